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

    /// Whether the text gives "relaying is not allowed" as the reason:
    /// Postfix's `Relay access denied`, Sendmail's `Relaying denied`, Exim's
    /// `relay not permitted`. It makes a 4xx a policy refusal rather than a
    /// "come back later" (see `TestOutcome.refused`). Addresses in angle
    /// brackets and URLs are left out first: a greylisting reply such as
    /// postgrey's names the recipient's domain (`relay-test.example`) in both.
    public var deniesRelaying: Bool {
        let words = Self.prose(lines.joined(separator: " "))
        for (index, word) in words.enumerated() where word == "relay" || word == "relaying" {
            let following = words[(index + 1)...].prefix(3)
            if following.contains(where: Self.denials.contains) { return true }
            if let not = following.firstIndex(of: "not"), not + 1 < words.count, ["permitted", "allowed"].contains(words[not + 1]) {
                return true
            }
        }
        return false
    }

    private static let denials: Set<String> = ["denied", "prohibited", "refused", "forbidden", "unauthorized", "unauthorised"]

    /// The lowercased words of `text`, without `<…>` spans and without
    /// tokens that hold an address, a domain name or a path.
    private static func prose(_ text: String) -> [String] {
        var outside = ""
        var depth = 0
        for character in text.lowercased() {
            if character == "<" { depth += 1 } else if character == ">" { depth = max(0, depth - 1) } else if depth == 0 { outside.append(character) }
        }
        return outside.split(separator: " ")
            .filter { token in
                let inner = token.drop(while: \.isPunctuation).reversed().drop(while: \.isPunctuation)
                return !inner.contains("/") && !inner.contains("@") && !inner.contains(".")
            }
            .flatMap { $0.split(whereSeparator: { !$0.isLetter }) }
            .map(String.init)
    }

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
