/// A domain name in the form we compare: lower case, A-labels for IDN, no trailing dot.
public struct DomainName: Hashable, Sendable, CustomStringConvertible {
    /// Dot-separated A-labels, e.g. `xn--bcher-kva.example`.
    public let text: String

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case badLabel(String)
        case tooLong

        public var description: String {
            switch self {
            case .empty: "empty domain"
            case .badLabel(let label): "bad domain label \"\(label)\""
            case .tooLong: "domain longer than 253 characters"
            }
        }
    }

    /// Normalises `raw`: drops one trailing dot, folds case, encodes IDN labels as A-labels,
    /// and checks each label is 1-63 letters, digits or hyphens (underscores tolerated).
    public init(parsing raw: some StringProtocol) throws(ParseError) {
        var raw = Substring(raw)
        if raw.utf8.last == UInt8(ascii: ".") { raw = raw[..<raw.utf8.index(before: raw.endIndex)] }
        guard !raw.isEmpty else { throw .empty }
        if let text = Self.validASCII(raw) {
            self.text = text
            return
        }
        var labels: [String] = []
        for label in raw.split(separator: ".", omittingEmptySubsequences: false) {
            let folded = label.lowercased()
            let ascii: String
            if folded.unicodeScalars.allSatisfy(\.isASCII) {
                ascii = folded
            } else {
                guard let encoded = Punycode.encode(folded) else { throw .badLabel(String(label)) }
                ascii = "xn--" + encoded
            }
            guard (1...63).contains(ascii.utf8.count),
                  ascii.utf8.allSatisfy({ Self.isLabelByte($0) }),
                  ascii.first != "-", ascii.last != "-" else { throw .badLabel(String(label)) }
            labels.append(ascii)
        }
        let text = labels.joined(separator: ".")
        guard text.utf8.count <= 253 else { throw .tooLong }
        self.text = text
    }

    /// The common case in one pass over the bytes: an ASCII name whose labels are
    /// all valid, folded to lower case. Nil sends anything else (IDN, or an error
    /// to report precisely) through the label-by-label path.
    private static func validASCII(_ raw: Substring) -> String? {
        var folded: [UInt8] = []
        folded.reserveCapacity(raw.utf8.count)
        var labelLength = 0
        var previous: UInt8 = UInt8(ascii: ".")
        for byte in raw.utf8 {
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0, previous != UInt8(ascii: "-") else { return nil }
                labelLength = 0
                folded.append(byte)
            } else {
                let lower = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
                guard isLabelByte(lower), !(labelLength == 0 && lower == UInt8(ascii: "-")) else { return nil }
                labelLength += 1
                guard labelLength <= 63 else { return nil }
                folded.append(lower)
            }
            previous = byte
        }
        guard labelLength > 0, previous != UInt8(ascii: "-"), folded.count <= 253 else { return nil }
        return String(decoding: folded, as: UTF8.self)
    }

    /// True when every label is numeric, e.g. `192.0.2.1` written without brackets.
    public var looksLikeIPv4: Bool {
        text.utf8.allSatisfy { $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// True when `self` is `other` or a subdomain of it, matching whole labels only
    /// (`evillocal.example` is not under `local.example`).
    public func isSameOrSubdomain(of other: DomainName) -> Bool {
        text == other.text || text.hasSuffix("." + other.text)
    }

    public var description: String { text }

    private static func isLabelByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}

/// A configured domain entry: `example.org` matches that domain only; `.example.org`
/// matches every subdomain of it (not the domain itself), as Postfix's tables do.
public struct DomainPattern: Hashable, Sendable, CustomStringConvertible {
    public let domain: DomainName
    public let includesSubdomainsOnly: Bool

    public init(parsing raw: String) throws(DomainName.ParseError) {
        if raw.hasPrefix(".") {
            domain = try DomainName(parsing: raw.dropFirst())
            includesSubdomainsOnly = true
        } else {
            domain = try DomainName(parsing: raw)
            includesSubdomainsOnly = false
        }
    }

    public func matches(_ candidate: DomainName) -> Bool {
        includesSubdomainsOnly
            ? candidate.text.hasSuffix("." + domain.text)
            : candidate == domain
    }

    public var description: String { (includesSubdomainsOnly ? "." : "") + domain.text }
}
