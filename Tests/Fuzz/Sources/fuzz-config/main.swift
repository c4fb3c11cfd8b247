import CLibFuzzer
import Glibc
import RelayConfig

/// Any bytes as relay-milter's TOML file: the loader answers with a config or a
/// ConfigError naming the file, never a crash; and a config it accepts prints
/// (check-config's output) as a file that loads back to the same config.
/// The same bytes as a duration (a `--ttl` or `--since` on the command line):
/// seconds within the bound that print back to themselves, or an error.
// Also under libFuzzer's own name: its runtime's main (linked in with it) refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    if let seconds = try? DurationText.seconds(text) {
        precondition((0...DurationText.maximumSeconds).contains(seconds), "\(text) parsed as \(seconds) s")
        precondition((try? DurationText.seconds(DurationText.text(seconds))) == seconds, "\(text) does not print back")
    }
    do {
        let config = try ConfigLoader.parse(text, file: "fuzz.toml")
        let rendered = ConfigRenderer.render(config)
        precondition((try? ConfigLoader.parse(rendered, file: "rendered.toml")) == config, "rendered config does not load back:\n\(rendered)")
    } catch {
        precondition(error.file == "fuzz.toml", "error names another file: \(error)")
    }
    return 0
}

// libFuzzer runs a full leak scan after each input that mallocs more than it
// frees, and every parse does (TOMLKit's allocations, suppressed in
// .ci/lsan.supp): 35 runs/s instead of 384 from the seed corpus, 143 s
// instead of 16 for Scripts/test's 5,000 runs (2026-12-02). So that check is
// off by default here, given first so that a -detect_leaks=1 on the command
// line wins. LeakSanitizer still checks the whole run at exit (a leak outside
// the suppressions fails it); only the input that leaked goes unnamed.
var arguments: [UnsafeMutablePointer<CChar>?] = [CommandLine.unsafeArgv[0], strdup("-detect_leaks=0")]
    + (1..<Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0] } + [nil]
var argc = CInt(arguments.count - 1)
arguments.withUnsafeMutableBufferPointer { buffer in
    var argv = buffer.baseAddress
    exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzConfig))
}
