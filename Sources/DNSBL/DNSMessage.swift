/// The little of DNS a blocklist lookup needs (RFC 1035): a query for one
/// name, and the A, TXT and SOA records of the answer. Pure bytes in and
/// out; names in answers are skipped, never followed, so a hostile answer
/// cannot make the parser loop.
public enum DNSMessage {
    public enum RecordType: UInt16, Sendable {
        case a = 1
        case soa = 6
        case txt = 16
    }

    public enum ResponseCode: Sendable, Equatable {
        case noError
        case nameError // NXDOMAIN: not listed
        case other(UInt8)
    }

    public struct AddressRecord: Sendable, Equatable {
        /// IPv4, host order.
        public var address: UInt32
        public var ttl: UInt32

        public init(address: UInt32, ttl: UInt32) {
            self.address = address
            self.ttl = ttl
        }
    }

    public struct Answer: Sendable, Equatable {
        public var rcode: ResponseCode
        public var truncated: Bool
        /// A records of the answer section.
        public var addresses: [AddressRecord]
        /// TXT records of the answer section, each record's strings joined.
        public var texts: [String]
        /// How long a "no such name" may be cached: the authority section's
        /// SOA, the smaller of its TTL and its minimum (RFC 2308).
        public var negativeTTL: UInt32?
    }

    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// A recursive query (RD set) for `name` in class IN.
    public static func query(id: UInt16, name: String, type: RecordType) throws(Malformed) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(18 + name.utf8.count)
        append16(id, to: &bytes)
        append16(0x0100, to: &bytes) // RD
        append16(1, to: &bytes) // one question
        bytes += [0, 0, 0, 0, 0, 0]
        try appendName(name, to: &bytes)
        append16(type.rawValue, to: &bytes)
        append16(1, to: &bytes) // IN
        return bytes
    }

    /// Parses the answer to the query `id`; throws for anything else.
    public static func parse(_ bytes: [UInt8], expectingID id: UInt16) throws(Malformed) -> Answer {
        var reader = Reader(bytes: bytes)
        guard try reader.u16() == id else { throw Malformed(description: "answer to another query") }
        let flags = try reader.u16()
        guard flags & 0x8000 != 0 else { throw Malformed(description: "not a response") }
        let questions = try reader.u16(), answers = try reader.u16(), authorities = try reader.u16()
        _ = try reader.u16() // additional records: not read
        let rcodeBits = UInt8(flags & 0x000F)
        var answer = Answer(
            rcode: rcodeBits == 0 ? .noError : rcodeBits == 3 ? .nameError : .other(rcodeBits),
            truncated: flags & 0x0200 != 0, addresses: [], texts: [], negativeTTL: nil
        )
        for _ in 0..<questions {
            try reader.skipName()
            try reader.skip(4)
        }
        for section in 0..<2 {
            for _ in 0..<(section == 0 ? answers : authorities) {
                try reader.skipName()
                let type = try reader.u16()
                _ = try reader.u16() // class
                let ttl = try reader.u32()
                let length = Int(try reader.u16())
                let end = reader.offset + length
                guard end <= bytes.count else { throw Malformed(description: "record data beyond the message") }
                switch (section, RecordType(rawValue: type)) {
                case (0, .a):
                    guard length == 4 else { throw Malformed(description: "A record of \(length) bytes") }
                    answer.addresses.append(AddressRecord(address: try reader.u32(), ttl: ttl))
                case (0, .txt):
                    var text: [UInt8] = []
                    while reader.offset < end {
                        let count = Int(try reader.u8())
                        guard reader.offset + count <= end else { throw Malformed(description: "TXT string beyond its record") }
                        text += bytes[reader.offset..<reader.offset + count]
                        reader.offset += count
                    }
                    answer.texts.append(String(decoding: text, as: UTF8.self))
                case (1, .soa):
                    try reader.skipName() // primary server
                    try reader.skipName() // mailbox
                    try reader.skip(16) // serial, refresh, retry, expire
                    let minimum = try reader.u32()
                    answer.negativeTTL = min(ttl, minimum)
                default:
                    break
                }
                reader.offset = end
            }
        }
        return answer
    }

    /// The name to ask a blocklist `zone` about an IPv4 address (`4.3.2.1.zone`).
    public static func blocklistName(ipv4 address: UInt32, zone: String) -> String {
        "\(address & 0xFF).\(address >> 8 & 0xFF).\(address >> 16 & 0xFF).\(address >> 24).\(zone)"
    }

    /// The name for an IPv6 address: its 32 nibbles, last first (RFC 5782).
    public static func blocklistName(ipv6 address: UInt128, zone: String) -> String {
        let digits = Array("0123456789abcdef")
        var name = ""
        name.reserveCapacity(64 + zone.utf8.count)
        for shift in stride(from: 0, to: 128, by: 4) {
            name.append(digits[Int(address >> UInt128(shift) & 0xF)])
            name.append(".")
        }
        return name + zone
    }

    private static func append16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    private static func appendName(_ name: String, to bytes: inout [UInt8]) throws(Malformed) {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        var total = 1
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty, utf8.count <= 63 else { throw Malformed(description: "\"\(name)\" has an empty or over-long label") }
            total += utf8.count + 1
            guard total <= 255 else { throw Malformed(description: "\"\(name)\" is longer than 255 bytes") }
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes.append(0)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func u8() throws(Malformed) -> UInt8 {
            guard offset < bytes.count else { throw Malformed(description: "message cut short") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() throws(Malformed) -> UInt16 {
            UInt16(try u8()) << 8 | UInt16(try u8())
        }

        mutating func u32() throws(Malformed) -> UInt32 {
            UInt32(try u16()) << 16 | UInt32(try u16())
        }

        mutating func skip(_ count: Int) throws(Malformed) {
            guard offset + count <= bytes.count else { throw Malformed(description: "message cut short") }
            offset += count
        }

        /// Labels up to the root, or up to a compression pointer (which ends a name).
        mutating func skipName() throws(Malformed) {
            while true {
                let length = try u8()
                switch length & 0xC0 {
                case 0:
                    if length == 0 { return }
                    try skip(Int(length))
                case 0xC0:
                    _ = try u8()
                    return
                default:
                    throw Malformed(description: "unknown label type")
                }
            }
        }
    }
}
