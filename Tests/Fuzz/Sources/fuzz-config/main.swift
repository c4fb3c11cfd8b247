import CLibFuzzer
import Glibc
import RelayConfig

/// Any bytes as relay-milter's TOML file: the loader answers with a config or a
/// ConfigError naming the file, never a crash; and a config it accepts prints
/// (check-config's output) as a file that loads back to the same config.
// Also under libFuzzer's own name: its runtime's main (linked in with it) refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let config = try ConfigLoader.parse(text, file: "fuzz.toml")
        let rendered = ConfigRenderer.render(config)
        precondition((try? ConfigLoader.parse(rendered, file: "rendered.toml")) == config, "rendered config does not load back:\n\(rendered)")
    } catch {
        precondition(error.file == "fuzz.toml", "error names another file: \(error)")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzConfig))
