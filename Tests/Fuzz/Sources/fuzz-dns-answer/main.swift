import CLibFuzzer
import DNSBL
import Glibc

/// Any bytes as a DNS server's answer to a blocklist query (the first two
/// bytes are taken as the query's ID, so most inputs get past the ID check).
/// The parser must never crash or loop, and what it returns must be
/// consistent with the message: no more records than its header counts, and
/// every A record four bytes of data.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNSAnswer(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let id = bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : 0
    guard let answer = try? DNSMessage.parse(bytes, expectingID: id) else { return 0 }
    let answerCount = Int(bytes[6]) << 8 | Int(bytes[7])
    precondition(answer.addresses.count + answer.texts.count <= answerCount)
    // Each A record took at least 15 bytes (a 1-byte name, 10 of header, 4 of data).
    precondition(answer.addresses.count * 15 <= bytes.count)
    for text in answer.texts { precondition(text.utf8.count <= bytes.count) }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzDNSAnswer))
