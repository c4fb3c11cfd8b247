// One blocking milter connection, as an MTA's SMTP server process holds one per
// SMTP session. Like Postfix's milter8 client (a double-buffered VSTREAM, no
// TCP_NODELAY), it gathers what it sends in a buffer and writes it only when it
// next waits for a reply, or closes: an event's macros and command go out in one
// write(2), and an event the milter does not answer goes out with the next one.
#if canImport(Glibc)
import Glibc
#endif

/// Where the milter listens, in libmilter's notation; only loopback is accepted.
enum MilterEndpoint: CustomStringConvertible {
    case unix(path: String)
    case inet(host: String, port: UInt16)

    init?(_ spec: String) {
        if spec.hasPrefix("unix:") || spec.hasPrefix("local:") {
            self = .unix(path: String(spec.drop { $0 != ":" }.dropFirst()))
        } else if spec.hasPrefix("inet:") {
            let rest = spec.dropFirst("inet:".count).split(separator: "@", maxSplits: 1)
            guard rest.count == 2, let port = UInt16(rest[0]), rest[1].hasPrefix("127.") else { return nil }
            self = .inet(host: String(rest[1]), port: port)
        } else {
            return nil
        }
    }

    var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .inet(let host, let port): return "inet:\(port)@\(host)"
        }
    }
}

struct ConnectionError: Error, CustomStringConvertible {
    let description: String
}

final class MilterConnection {
    private let descriptor: Int32
    private var decoder = PacketDecoder()
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// Written, not yet sent: sent by the next `receive` or at close.
    private var pending: [UInt8] = []

    init(_ endpoint: MilterEndpoint) throws {
        switch endpoint {
        case .unix(let path):
            descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw ConnectionError(description: "socket: \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                Glibc.close(descriptor)
                throw ConnectionError(description: "socket path too long: \(path)")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try Self.check(result, descriptor, "connect \(endpoint)")
        case .inet(let host, let port):
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw ConnectionError(description: "socket: \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try Self.check(result, descriptor, "connect \(endpoint)")
        }
    }

    deinit {
        try? flush()
        Glibc.close(descriptor)
    }

    private static func check(_ result: Int32, _ descriptor: Int32, _ what: String) throws {
        guard result == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw ConnectionError(description: "\(what): \(String(cString: strerror(code)))")
        }
    }

    /// Queues a packet; it leaves with the next `receive` (Postfix's stream
    /// flushes its write buffer before it reads) or at close.
    func write(_ packet: MilterPacket) {
        pending += packet.bytes
    }

    /// Writes what is queued, in one write(2) unless the socket takes less.
    private func flush() throws {
        var offset = 0
        defer { pending.removeAll(keepingCapacity: true) }
        while offset < pending.count {
            let written = pending.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else {
                if written < 0 && errno == EINTR { continue }
                throw ConnectionError(description: "send: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// The next packet other than "progress" (which only asks the MTA to keep waiting).
    func receive() throws -> MilterPacket {
        if !pending.isEmpty { try flush() }
        while true {
            if let packet = try decoder.next() {
                if packet.commandCharacter == "p" { continue }
                return packet
            }
            let count = readBuffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress!, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw ConnectionError(description: count == 0 ? "milter closed the connection" : "recv: \(String(cString: strerror(errno)))")
            }
            readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    func ask(_ packet: MilterPacket) throws -> MilterPacket {
        write(packet)
        return try receive()
    }
}
