/// A CIDR block such as `192.0.2.0/24` or `2001:db8::/32`; a bare address is a /32 or /128.
public struct NetworkBlock: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAnAddress(String)
        case badPrefix(String)
        case hostBitsSet(String, suggestion: String)

        public var description: String {
            switch self {
            case .notAnAddress(let text): "\"\(text)\" is not an IPv4 or IPv6 address or CIDR block"
            case .badPrefix(let text): "\"\(text)\" has a prefix length out of range"
            case .hostBitsSet(let text, let suggestion):
                "\"\(text)\" has host bits set after the prefix; did you mean \"\(suggestion)\"?"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { throw .notAnAddress(text) }
        var length = address.bitWidth
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCIIDigit), let value = Int(parts[1]),
                  (0...address.bitWidth).contains(value) else { throw .badPrefix(text) }
            length = value
        }
        let masked = Self.mask(address, to: length)
        guard masked == address else { throw .hostBitsSet(text, suggestion: "\(masked)/\(length)") }
        network = address
        prefixLength = length
    }

    /// The block of `length` bits that contains `address`, e.g. its /24.
    public init(masking address: IPAddress, to length: Int) {
        let length = min(max(0, length), address.bitWidth)
        network = Self.mask(address, to: length)
        prefixLength = length
    }

    public func contains(_ address: IPAddress) -> Bool {
        switch (network, address) {
        case (.v4, .v4), (.v6, .v6): Self.mask(address, to: prefixLength) == network
        default: false
        }
    }

    public var description: String { "\(network)/\(prefixLength)" }

    static func mask(_ address: IPAddress, to length: Int) -> IPAddress {
        switch address {
        case .v4(let value):
            return .v4(length == 0 ? 0 : value & ~UInt32(0) << UInt32(32 - length))
        case .v6(let value):
            return .v6(length == 0 ? 0 : value & ~UInt128(0) << UInt128(128 - length))
        }
    }
}
