// Verdict cache figures: start-up load time and connect-path lookup latency
// (p50/p99) at 10 k, 100 k and 1 M cached hosts, beside a plain unlocked
// Dictionary of the same keys as the baseline. Prints a table; asserts nothing.
// Memory is measured on a whole daemon started on the kept databases
// (Scripts/bench, section 3): in this process, RSS after freeing the records
// written here says little.
// Usage: verdict-cache-bench [--sizes 10000,100000,1000000] [--lookups N]
//                            [--keep DIR]  (keep each database as DIR/vSIZE.sqlite)
import Foundation
import RelayMilter
import RelayPolicy
import VerdictStore

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func address(_ i: Int) -> IPAddress {
    // Spread over 1.0.0.0 and up: distinct hosts, as many /24s as a big cache has.
    .v4(UInt32(0x0100_0000 + i))
}

var sizes = [10_000, 100_000, 1_000_000]
var lookups = 200_000
var keep: String?
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--sizes": sizes = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--lookups": lookups = Int(arguments.next() ?? "") ?? lookups
    case "--keep": keep = arguments.next()
    default: print("unknown argument \(argument)"); exit(2)
    }
}

print("verdict cache: \(lookups) lookups per size (half hits, half misses), times in nanoseconds")
print("hosts      load_s  index_p50  index_p99  dict_p50  dict_p99  p50_ratio")
let directory = keep.map { URL(fileURLWithPath: $0) }
    ?? FileManager.default.temporaryDirectory.appendingPathComponent("verdict-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { if keep == nil { try? FileManager.default.removeItem(at: directory) } }

for size in sizes {
    let path = directory.appendingPathComponent("v\(size).sqlite").path
    do {
        let store = try VerdictStore(path: path)
        let now = Date()
        let records = (0..<size).map { i in
            VerdictRecord(host: "\(address(i))", verdict: i % 10 == 0 ? "open" : "closed", testedAt: now,
                          expiresAt: now.addingTimeInterval(86400), acceptedTests: i % 10 == 0 ? ["null sender"] : [],
                          testsRun: 20, banner: "mx\(i).example ESMTP", detail: "", source: .probe)
        }
        try store.saveAll(records)
    }
    let loadStart = ContinuousClock.now
    let index = VerdictIndex()
    let store = try VerdictStore(path: path)
    try index.replaceAll(from: store)
    let loadSeconds = Double((ContinuousClock.now - loadStart).components.attoseconds) / 1e18 + Double((ContinuousClock.now - loadStart).components.seconds)

    var plain: [IPAddress: Bool] = [:]
    plain.reserveCapacity(size)
    for i in 0..<size { plain[address(i)] = true }

    let probes = (0..<lookups).map { i in address(i % 2 == 0 ? Int.random(in: 0..<size) : size + i) }
    let now = Date()
    var indexTimes: [Double] = [], dictTimes: [Double] = []
    indexTimes.reserveCapacity(lookups)
    dictTimes.reserveCapacity(lookups)
    var hits = 0
    // Alternate the two in one loop so that both see the same machine noise.
    for probe in probes {
        let a = ContinuousClock.now
        if case .hit = index.lookup(probe, now: now) { hits += 1 }
        let b = ContinuousClock.now
        if plain[probe] != nil { hits += 1 }
        let c = ContinuousClock.now
        indexTimes.append(Double((b - a).components.attoseconds) / 1e9)
        dictTimes.append(Double((c - b).components.attoseconds) / 1e9)
    }
    indexTimes.sort()
    dictTimes.sort()
    let line = String(format: "%-9d  %6.2f  %9.0f  %9.0f  %8.0f  %8.0f  %9.2f",
                      size, loadSeconds, percentile(indexTimes, 0.5), percentile(indexTimes, 0.99),
                      percentile(dictTimes, 0.5), percentile(dictTimes, 0.99), percentile(indexTimes, 0.5) / percentile(dictTimes, 0.5))
    print(line, hits > 0 ? "" : "(no hits?)")
}
