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
    // A syntax error names a line the text has.
    let lines = text.utf8.count { $0 == UInt8(ascii: "\n") } + 1
    do {
        let config = try ConfigLoader.parse(text, file: "fuzz.toml")
        let rendered = ConfigRenderer.render(config)
        precondition((try? ConfigLoader.parse(rendered, file: "rendered.toml")) == config, "rendered config does not load back:\n\(rendered)")
    } catch {
        precondition(error.file == "fuzz.toml", "error names another file: \(error)")
        precondition(error.line.map { (1...lines).contains($0) } ?? true, "error names line \(error.line!) of \(lines): \(error)")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzConfig))
