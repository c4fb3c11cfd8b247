/// An envelope address taken apart the way Postfix's resolver sees it
/// (`trivial-rewrite/resolve.c`): source route stripped but remembered, split
/// at the last unquoted `@`, local part dequoted so that routing characters
/// hidden in quotes or behind backslashes are visible.
public struct MailAddress: Hashable, Sendable {
    public enum Domain: Hashable, Sendable, CustomStringConvertible {
        case name(DomainName)
        case literal(IPAddress)

        public var description: String {
            switch self {
            case .name(let name): name.text
            case .literal(.v4(let v4)): "[\(IPAddress.v4(v4))]"
            case .literal(let v6): "[IPv6:\(v6)]"
            }
        }
    }

    /// The local part with quotes and backslash escapes removed.
    public let localPart: String
    /// Nil for an unqualified address (`postmaster`, `host!user`).
    public let domain: Domain?
    /// True when the address came with a source route (`@hop,@hop:user@domain`).
    /// The route is ignored for delivery, as RFC 5321 says, but like Postfix's
    /// resolver (`RESOLVE_FLAG_ROUTED`) we never count such an address as local.
    public let hadSourceRoute: Bool
    /// True for the null address `<>`.
    public var isNull: Bool { localPart.isEmpty && domain == nil }
    /// True when the address carries routing of any kind: a source route, or a
    /// routing character in the local part.
    public var isRouted: Bool { hadSourceRoute || routingCharacter != nil }

    /// The first of `@`, `%`, `!` left in the local part: such an address is
    /// routed onwards by whoever delivers it, whatever the local settings,
    /// "because we can't know how the next MX host is set up" (Postfix).
    public var routingCharacter: Character? {
        localPart.utf8.first { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "!") }
            .map { Character(Unicode.Scalar($0)) }
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unbalancedQuote
        case unbalancedBrackets
        case badSourceRoute
        case unquotedSpecial(Character)
        case emptyLocalPart
        case emptyDomain
        case badIPLiteral(String)
        case bareIPAddress(String)
        case badDomain(DomainName.ParseError)

        public var description: String {
            switch self {
            case .unbalancedQuote: "unbalanced quote"
            case .unbalancedBrackets: "unbalanced angle or square brackets"
            case .badSourceRoute: "malformed source route"
            case .unquotedSpecial(let c): "unquoted \"\(c)\" in address"
            case .emptyLocalPart: "empty local part"
            case .emptyDomain: "empty domain after @"
            case .badIPLiteral(let text): "bad address literal [\(text)]"
            case .bareIPAddress(let text): "IP address \(text) without brackets"
            case .badDomain(let error): error.description
            }
        }
    }

    /// Characters that RFC 5321 allows in an address only inside quotes. Every
    /// character the parser looks for is ASCII, so it scans UTF-8 bytes, as
    /// Postfix does; other bytes are only ever copied.
    private static func isUnquotedSpecial(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: ","), UInt8(ascii: ";"): true
        default: false
        }
    }

    public init(localPart: String, domain: Domain?, hadSourceRoute: Bool = false) {
        self.localPart = localPart
        self.domain = domain
        self.hadSourceRoute = hadSourceRoute
    }

    public init(parsing raw: String) throws(ParseError) {
        var text = Substring(raw).trimmingASCIIWhitespace()
        if text.utf8.first == UInt8(ascii: "<") || text.utf8.last == UInt8(ascii: ">") {
            guard text.utf8.count >= 2, text.utf8.first == UInt8(ascii: "<"), text.utf8.last == UInt8(ascii: ">") else {
                throw .unbalancedBrackets
            }
            text = text[text.utf8.index(after: text.startIndex)..<text.utf8.index(before: text.endIndex)].trimmingASCIIWhitespace()
        }
        if text.isEmpty {
            self.init(localPart: "", domain: nil)
            return
        }
        let hadSourceRoute = text.utf8.first == UInt8(ascii: "@")
        text = try Self.strippingSourceRoute(text)

        // Find the last '@' outside quotes, brackets and backslash escapes.
        var splitAt: Substring.Index?
        var inQuotes = false, inBrackets = false, escaped = false
        let bytes = text.utf8
        // An index loop rather than `bytes.indices`: the generic `Indices` of a
        // Substring's UTF-8 view was not specialised and cost a fifth of this
        // parser's time under milter-load.
        var index = bytes.startIndex
        while index < bytes.endIndex {
            defer { bytes.formIndex(after: &index) }
            let c = bytes[index]
            if escaped { escaped = false; continue }
            switch c {
            case UInt8(ascii: "\\"): escaped = true
            case UInt8(ascii: "\"") where !inBrackets: inQuotes.toggle()
            case UInt8(ascii: "[") where !inQuotes: inBrackets = true
            case UInt8(ascii: "]") where !inQuotes: inBrackets = false
            case UInt8(ascii: "@") where !inQuotes && !inBrackets: splitAt = index
            default:
                if !inQuotes, !inBrackets, Self.isUnquotedSpecial(c) { throw .unquotedSpecial(Character(Unicode.Scalar(c))) }
            }
        }
        guard !inQuotes, !escaped else { throw .unbalancedQuote }

        let rawLocal = splitAt.map { text[..<$0] } ?? text
        let localPart = Self.dequoted(rawLocal)
        guard !localPart.isEmpty else { throw .emptyLocalPart }
        guard let splitAt else {
            self.init(localPart: localPart, domain: nil, hadSourceRoute: hadSourceRoute)
            return
        }
        let rawDomain = text[text.utf8.index(after: splitAt)...]
        self.init(localPart: localPart, domain: try Self.parseDomain(rawDomain), hadSourceRoute: hadSourceRoute)
    }

    /// `@a,@b:user@c` becomes `user@c`; RFC 5321 says to ignore source routes and
    /// Postfix does. The route must be a list of `@domain`s ending in a colon.
    private static func strippingSourceRoute(_ text: Substring) throws(ParseError) -> Substring {
        guard text.utf8.first == UInt8(ascii: "@") else { return text }
        guard let colon = text.firstIndex(of: ":") else { throw .badSourceRoute }
        let route = text[..<colon]
        for hop in route.split(separator: ",", omittingEmptySubsequences: false) {
            let hop = hop.trimmingASCIIWhitespace()
            guard hop.first == "@", hop.count > 1 else { throw .badSourceRoute }
        }
        let rest = text[text.index(after: colon)...]
        guard !rest.isEmpty else { throw .badSourceRoute }
        return rest
    }

    private static func dequoted(_ raw: Substring) -> String {
        let backslash = UInt8(ascii: "\\"), quote = UInt8(ascii: "\"")
        guard raw.utf8.contains(where: { $0 == backslash || $0 == quote }) else { return String(raw) }
        var result: [UInt8] = []
        result.reserveCapacity(raw.utf8.count)
        var escaped = false
        for c in raw.utf8 {
            if escaped {
                result.append(c)
                escaped = false
            } else if c == backslash {
                escaped = true
            } else if c != quote {
                result.append(c)
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    private static func parseDomain(_ raw: Substring) throws(ParseError) -> Domain {
        guard !raw.isEmpty else { throw .emptyDomain }
        // Bytes, not Characters: finding the last Character means grapheme breaking.
        let opens = raw.utf8.first == UInt8(ascii: "["), closes = raw.utf8.last == UInt8(ascii: "]")
        if opens || closes {
            guard opens, closes else { throw .unbalancedBrackets }
            // Cut the brackets as bytes too: a Character-wise dropLast would take
            // a prepended mark with the `]` (`[1.2.3.4\u{600}]`).
            let inner = raw[raw.utf8.index(after: raw.startIndex)..<raw.utf8.index(before: raw.endIndex)]
            if inner.lowercased().hasPrefix("ipv6:") {
                guard case .some(.v6(let v6)) = IPAddress(inner.dropFirst(5)) else { throw .badIPLiteral(String(inner)) }
                return .literal(.v6(v6))
            }
            guard let v4 = IPAddress.parseIPv4(inner) else { throw .badIPLiteral(String(inner)) }
            return .literal(.v4(v4))
        }
        let name: DomainName
        do {
            name = try DomainName(parsing: raw)
        } catch {
            throw .badDomain(error)
        }
        guard !name.looksLikeIPv4 else { throw .bareIPAddress(String(raw)) }
        return .name(name)
    }
}

extension Substring {
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }),
              let last = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        // `last` may be inside a multi-byte character; the index after it is
        // whitespace or the end, so always a character boundary.
        return self[first..<utf8.index(after: last)]
    }
}
