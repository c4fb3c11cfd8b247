/// One complete SMTP reply: a three-digit code and its text lines.
public struct SMTPResponse: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isTransientFailure: Bool { (400..<500).contains(code) }

    /// The text of the first line (after the code), e.g. `mx.example.org ESMTP`.
    public var firstText: String { lines.first ?? "" }

    public var description: String { "\(code) \(lines.joined(separator: " / "))" }
}

/// Assembles reply lines into `SMTPResponse`s (RFC 5321 4.2.1): `250-...` lines
/// continue a reply, `250 ...` (or a bare `250`) ends it. A line of any other
/// shape, or a continuation whose code changes, means the peer is not
/// speaking SMTP.
public struct ReplyAssembler: Sendable {
    public enum Output: Equatable, Sendable {
        case incomplete
        case complete(SMTPResponse)
        case malformed(String)
    }

    private var code: Int?
    private var lines: [String] = []
    /// A peer that sends endless continuation lines is not answering.
    public static let maxLines = 100

    public init() {}

    public mutating func feed(_ line: String) -> Output {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0..<3].allSatisfy({ (0x30...0x39).contains($0) }),
              let lineCode = Int(String(decoding: bytes[0..<3], as: UTF8.self)) else {
            return .malformed(line)
        }
        let separator: UInt8? = bytes.count > 3 ? bytes[3] : nil
        guard separator == nil || separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            return .malformed(line)
        }
        if let code, code != lineCode { return .malformed(line) }
        code = lineCode
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        if separator == UInt8(ascii: "-") {
            return lines.count >= Self.maxLines ? .malformed(line) : .incomplete
        }
        let response = SMTPResponse(code: lineCode, lines: lines)
        self = ReplyAssembler()
        return .complete(response)
    }
}
