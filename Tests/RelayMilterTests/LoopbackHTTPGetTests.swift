import Foundation
@testable import RelayMilter
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `relay-milter stats`'s one GET to the daemon, against a listener that
/// resets its first connection, as the daemon was once seen to in CI.
struct LoopbackHTTPGetTests {
    @Test func aResetConnectionIsAskedOnceMore() throws {
        let listener = try ResettingListener()
        let (status, body) = try LoopbackHTTPGet.fetch(host: "127.0.0.1", port: listener.port, path: "/stats", timeoutSeconds: 5)
        #expect(status == 200)
        #expect(body == Array("ok".utf8))
        #expect(listener.waitForConnections() == 2)
    }
}

/// A blocking listener on 127.0.0.1: it reads the first request and resets
/// the connection (SO_LINGER 0), then answers the second with 200 "ok".
private final class ResettingListener: Sendable {
    let port: Int
    private let socket: Int32
    private let served = ServedCount()

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(socket, raw, length) == 0, listen(socket, 8) == 0 else { return -1 }
                return getsockname(socket, raw, &length)
            }
        }
        guard bound == 0 else {
            let code = POSIXErrorCode(rawValue: errno) ?? .EIO
            close(socket)
            throw POSIXError(code)
        }
        self.socket = socket
        port = Int(UInt16(bigEndian: address.sin_port))
        let served = self.served
        Thread { served.finish(Self.serveTwo(on: socket)) }.start()
    }

    private static func serveTwo(on socket: Int32) -> Int {
        var count = 0
        for attempt in 0..<2 {
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else { break }
            count += 1
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = read(connection, &buffer, buffer.count)
            if attempt == 0 {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            } else {
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8)
                _ = write(connection, answer, answer.count)
            }
            close(connection)
        }
        return count
    }

    /// How many connections the listener took, once it has served both.
    func waitForConnections() -> Int {
        let count = served.wait()
        close(socket)
        return count
    }
}

/// The listener thread's count, handed over once.
private final class ServedCount: @unchecked Sendable { // `count` is written before `done` is signalled and read after waiting on it
    private var count = 0
    private let done = DispatchSemaphore(value: 0)

    func finish(_ count: Int) {
        self.count = count
        done.signal()
    }

    func wait() -> Int {
        done.wait()
        return count
    }
}
