// The MTA side of the milter protocol (version 6) as bytes: packets built and
// parsed as values, with no I/O. MilterConnection moves them over a socket.

/// Protocol flags an MTA and a milter negotiate (libmilter's mfdef.h).
enum MilterStep {
    static let noConnect: UInt32 = 0x1
    static let noHelo: UInt32 = 0x2
    static let noMail: UInt32 = 0x4
    static let noRcpt: UInt32 = 0x8
    static let noBody: UInt32 = 0x10
    static let noHeaders: UInt32 = 0x20
    static let noEndOfHeaders: UInt32 = 0x40
    static let noReplyHeader: UInt32 = 0x80
    static let noUnknown: UInt32 = 0x100
    static let noData: UInt32 = 0x200
    static let rcptRejected: UInt32 = 0x800
    static let noReplyConnect: UInt32 = 0x1000
    static let noReplyHelo: UInt32 = 0x2000
    static let noReplyMail: UInt32 = 0x4000
    static let noReplyRcpt: UInt32 = 0x8000
    static let noReplyData: UInt32 = 0x10000
    static let noReplyUnknown: UInt32 = 0x20000
    static let noReplyEndOfHeaders: UInt32 = 0x40000
    static let noReplyBody: UInt32 = 0x80000
    /// Everything a v6 MTA may offer, as Postfix 3.x offers it.
    static let allOffered: UInt32 = 0x1FFFFF
    /// Every modification action (add header ... set symbol list).
    static let allActions: UInt32 = 0x1FF
}

/// A 32-bit big-endian number, as the protocol writes lengths and flags.
func bigEndianUInt32(_ bytes: some Collection<UInt8>) -> UInt32 {
    bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
}

/// One framed packet: a 4-byte big-endian length, a command byte, a payload.
struct MilterPacket: Equatable {
    var command: UInt8
    var payload: [UInt8]

    init(_ command: Character, _ payload: [UInt8] = []) {
        self.command = command.asciiValue!
        self.payload = payload
    }

    init(command: UInt8, payload: [UInt8]) {
        self.command = command
        self.payload = payload
    }

    var bytes: [UInt8] {
        let length = UInt32(payload.count + 1)
        return withUnsafeBytes(of: length.bigEndian) { Array($0) } + [command] + payload
    }

    var commandCharacter: Character { Character(UnicodeScalar(command)) }
}

/// What the MTA sends, each as Postfix encodes it.
enum MTACommand {
    static func negotiate(actions: UInt32 = MilterStep.allActions, steps: UInt32 = MilterStep.allOffered) -> MilterPacket {
        MilterPacket("O", uint32(6) + uint32(actions) + uint32(steps))
    }

    static func macros(for command: Character, _ pairs: [(String, String)]) -> MilterPacket {
        var payload = [command.asciiValue!]
        for (name, value) in pairs {
            payload += cString(name) + cString(value)
        }
        return MilterPacket("D", payload)
    }

    static func connect(hostname: String, address: String, port: UInt16) -> MilterPacket {
        let family: UInt8 = address.contains(":") ? UInt8(ascii: "6") : UInt8(ascii: "4")
        let portBytes = withUnsafeBytes(of: port.bigEndian) { Array($0) }
        return MilterPacket("C", cString(hostname) + [family] + portBytes + cString(address))
    }

    static func helo(_ name: String) -> MilterPacket { MilterPacket("H", cString(name)) }
    static func mail(_ address: String) -> MilterPacket { MilterPacket("M", cString(address)) }
    static func rcpt(_ address: String) -> MilterPacket { MilterPacket("R", cString(address)) }
    static func header(_ name: String, _ value: String) -> MilterPacket { MilterPacket("L", cString(name) + cString(value)) }
    static let data = MilterPacket("T")
    static let endOfHeaders = MilterPacket("N")
    static func body(_ text: String) -> MilterPacket { MilterPacket("B", Array(text.utf8)) }
    static let endOfMessage = MilterPacket("E")
    static let abort = MilterPacket("A")
    static let quit = MilterPacket("Q")

    private static func uint32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    private static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
}

/// The milter's answer to OPTNEG: what it wants skipped, and which macros.
struct NegotiatedOptions {
    var version: UInt32
    var actions: UInt32
    var steps: UInt32
    /// Macro names per stage index (0 connect, 1 helo, 2 mail, 3 rcpt, 4 data, 5 eom, 6 eoh).
    var macroLists: [UInt32: [String]]

    init?(_ packet: MilterPacket) {
        guard packet.commandCharacter == "O", packet.payload.count >= 12 else { return nil }
        func word(_ at: Int) -> UInt32 { bigEndianUInt32(packet.payload[at..<at + 4]) }
        version = word(0)
        actions = word(4)
        steps = word(8)
        macroLists = [:]
        var index = 12
        while index + 4 <= packet.payload.count {
            let stage = word(index)
            index += 4
            let end = packet.payload[index...].firstIndex(of: 0) ?? packet.payload.count
            let names = String(decoding: packet.payload[index..<end], as: UTF8.self)
            macroLists[stage] = names.split(separator: " ").map(String.init)
            index = end + 1
        }
    }

    func skips(_ step: UInt32) -> Bool { steps & step != 0 }
}

/// Splits a byte stream into packets; keeps a partial packet until the rest arrives.
struct PacketDecoder {
    private var buffer: [UInt8] = []
    private var start = 0
    /// libmilter's own limit on a packet it sends (MILTER_CHUNK_SIZE and replies are far smaller).
    static let maximumLength = 1 << 20

    enum Failure: Error { case badLength(Int) }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    mutating func next() throws -> MilterPacket? {
        guard buffer.count - start >= 5 else { return nil }
        let length = Int(bigEndianUInt32(buffer[start..<start + 4]))
        guard length >= 1, length <= Self.maximumLength else { throw Failure.badLength(length) }
        guard buffer.count - start >= 4 + length else { return nil }
        let packet = MilterPacket(command: buffer[start + 4], payload: Array(buffer[start + 5..<start + 4 + length]))
        start += 4 + length
        if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        return packet
    }
}
