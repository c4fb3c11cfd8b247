/// The one-time address a registered test sends to: `prefix+token@domain`,
/// in a domain of the admin's own, so that the message comes back to the MTA
/// relay-milter serves. The token is 128 random bits, written in lowercase
/// base32 (26 letters and digits): it cannot be guessed, and it survives
/// MTAs that fold the case of local parts.
public struct RegisteredAlias: Sendable, Equatable, CustomStringConvertible {
    public let prefix: String
    public let token: String
    public let domain: String

    /// The token alphabet: RFC 4648's base32, lowercased.
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
    static let tokenLength = 26

    public init(prefix: String, token: String, domain: String) {
        self.prefix = prefix
        self.token = token
        self.domain = domain
    }

    /// A fresh alias with a token from `random` (the system's generator in use).
    public static func make(prefix: String, domain: String, using random: inout some RandomNumberGenerator) -> RegisteredAlias {
        var bits = UInt128(random.next()) << 64 | UInt128(random.next())
        var token = ""
        for _ in 0..<tokenLength {
            token.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return RegisteredAlias(prefix: prefix, token: token, domain: domain)
    }

    public var description: String { "\(prefix)+\(token)@\(domain)" }

    /// The token of a recipient that is an alias of this shape (`local@domain`
    /// as the MTA hands it over, any case), or nil. Only the exact shape
    /// counts: no other tag, no routing, a token of the right length and alphabet.
    public static func token(in recipient: String, prefix: String, domain: String) -> String? {
        let address = recipient.lowercased()
        let expectedEnd = "@" + domain.lowercased()
        let start = prefix.lowercased() + "+"
        guard address.hasPrefix(start), address.hasSuffix(expectedEnd) else { return nil }
        let token = address.dropFirst(start.count).dropLast(expectedEnd.count)
        guard token.count == tokenLength, token.allSatisfy(alphabet.contains) else { return nil }
        return String(token)
    }
}
