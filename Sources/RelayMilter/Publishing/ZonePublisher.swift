import Foundation
import Logging

/// Keeps `[publish] rbldnsd_file` and `rbldnsd_ipv6_file` up to date: at
/// start and then every `rbldnsd_interval`, the open relays in the in-memory
/// index are written as rbldnsd datasets (`RbldnsdZone`), each file replaced
/// in one step. The config is read at each round, so a reload takes effect at
/// the next one. A failing write is logged once per file, and so is its recovery.
struct ZonePublisher: Sendable {
    let store: ConfigStore
    let index: VerdictIndex
    let logger: Logger

    func run() async {
        var failing: Set<String> = []
        while !Task.isCancelled {
            let config = store.snapshot
            let files: [(RbldnsdZone.Dataset, String?)] = [(.ip4set, config.publish.rbldnsdFile), (.ip6trie, config.publish.rbldnsdIPv6File)]
            for case let (dataset, file?) in files {
                let zone = RbldnsdZone.render(index.allHosts(), dataset: dataset, badVerdicts: config.enforcement.badVerdicts,
                                              ttlSeconds: config.publish.dnsTTLSeconds, now: Date())
                do {
                    try AtomicFile.write(zone, to: file)
                    if failing.remove(file) != nil {
                        logger.notice("the DNSBL zone is written again", metadata: ["publish.file": "\(file)"])
                    }
                } catch {
                    if failing.insert(file).inserted {
                        logger.error("cannot write the DNSBL zone; trying again every interval", metadata: [
                            "publish.file": "\(file)", "error": "\(error)",
                        ])
                    }
                }
            }
            try? await Task.sleep(for: .seconds(config.publish.intervalSeconds))
        }
    }
}
