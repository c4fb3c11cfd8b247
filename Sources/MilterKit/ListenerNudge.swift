#if canImport(Glibc)
import Glibc
#endif
import MilterSocket

/// Wakes libmilter's accept loop after `smfi_stop`.
///
/// libmilter checks for a stop only between `select` calls, which wait up to
/// five seconds (MI_CHK_TIME) for a connection. One throw-away connection to
/// our own socket makes `select` return at once, so a stop takes milliseconds,
/// not seconds. The connection is closed straight away; libmilter sees EOF
/// during negotiation and drops it.
enum ListenerNudge {
    static func nudge(_ socket: SocketSpec) {
        switch socket {
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard path.utf8.count < capacity else { return }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: path.utf8)
                raw[path.utf8.count] = 0
            }
            connectAndClose(family: AF_UNIX, address: address)
        case .inet(let port, let host):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            let target = host == "0.0.0.0" || host.isEmpty ? "127.0.0.1" : host
            guard inet_pton(AF_INET, target, &address.sin_addr) == 1 else { return }
            connectAndClose(family: AF_INET, address: address)
        case .inet6(let port, let host):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            let target = host == "::" || host.isEmpty ? "::1" : host
            guard inet_pton(AF_INET6, target, &address.sin6_addr) == 1 else { return }
            connectAndClose(family: AF_INET6, address: address)
        }
    }

    private static func connectAndClose<Address>(family: Int32, address: Address) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = address
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
    }
}
