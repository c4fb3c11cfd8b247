/// An envelope address taken apart the way Postfix's resolver sees it
/// (`trivial-rewrite/resolve.c`): source route stripped, split at the last
/// unquoted `@`, local part dequoted so that routing characters hidden in
/// quotes or behind backslashes are visible.
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
    /// True for the null address `<>`.
    public var isNull: Bool { localPart.isEmpty && domain == nil }

    /// The first of `@`, `%`, `!` left in the local part: such an address is
    /// routed onwards by whoever delivers it, whatever the local settings,
    /// "because we can't know how the next MX host is set up" (Postfix).
    public var routingCharacter: Character? {
        localPart.first { $0 == "@" || $0 == "%" || $0 == "!" }
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

    /// Characters that RFC 5321 allows in an address only inside quotes.
    private static let unquotedSpecials: Set<Character> = [" ", "\t", "(", ")", "<", ">", ",", ";"]

    public init(localPart: String, domain: Domain?) {
        self.localPart = localPart
        self.domain = domain
    }

    public init(parsing raw: String) throws(ParseError) {
        var text = Substring(raw).trimmingASCIIWhitespace()
        if text.first == "<" || text.last == ">" {
            guard text.count >= 2, text.first == "<", text.last == ">" else { throw .unbalancedBrackets }
            text = text.dropFirst().dropLast().trimmingASCIIWhitespace()
        }
        if text.isEmpty {
            self.init(localPart: "", domain: nil)
            return
        }
        text = try Self.strippingSourceRoute(text)

        // Find the last '@' outside quotes, brackets and backslash escapes.
        var splitAt: Substring.Index?
        var inQuotes = false, inBrackets = false, escaped = false
        for index in text.indices {
            let c = text[index]
            if escaped { escaped = false; continue }
            switch c {
            case "\\": escaped = true
            case "\"" where !inBrackets: inQuotes.toggle()
            case "[" where !inQuotes: inBrackets = true
            case "]" where !inQuotes: inBrackets = false
            case "@" where !inQuotes && !inBrackets: splitAt = index
            default:
                if !inQuotes, !inBrackets, Self.unquotedSpecials.contains(c) { throw .unquotedSpecial(c) }
            }
        }
        guard !inQuotes, !escaped else { throw .unbalancedQuote }

        let rawLocal = splitAt.map { text[..<$0] } ?? text
        let localPart = try Self.dequoted(rawLocal)
        guard !localPart.isEmpty else { throw .emptyLocalPart }
        guard let splitAt else {
            self.init(localPart: localPart, domain: nil)
            return
        }
        let rawDomain = text[text.index(after: splitAt)...]
        self.init(localPart: localPart, domain: try Self.parseDomain(rawDomain))
    }

    /// `@a,@b:user@c` becomes `user@c`; RFC 5321 says to ignore source routes and
    /// Postfix does. The route must be a list of `@domain`s ending in a colon.
    private static func strippingSourceRoute(_ text: Substring) throws(ParseError) -> Substring {
        guard text.first == "@" else { return text }
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

    private static func dequoted(_ raw: Substring) throws(ParseError) -> String {
        var result = ""
        var escaped = false
        for c in raw {
            if escaped {
                result.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c != "\"" {
                result.append(c)
            }
        }
        return result
    }

    private static func parseDomain(_ raw: Substring) throws(ParseError) -> Domain {
        guard !raw.isEmpty else { throw .emptyDomain }
        if raw.first == "[" || raw.last == "]" {
            guard raw.first == "[", raw.last == "]" else { throw .unbalancedBrackets }
            let inner = raw.dropFirst().dropLast()
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
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }
}
