#if canImport(Glibc)
import Glibc
#endif

/// Turns the connect callback's `sockaddr` into text. Anything but IPv4 and
/// IPv6 (or a NULL pointer, which libmilter passes for unknown families) has
/// no address.
enum SocketAddressText {
    static func describe(_ address: UnsafeMutablePointer<sockaddr>?) -> (String?, UInt16?) {
        guard let address else { return (nil, nil) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var addr = v4.pointee.sin_addr
                guard inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)) != nil else { return (nil, nil) }
                return (text(buffer), UInt16(bigEndian: v4.pointee.sin_port))
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var addr = v6.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)) != nil else { return (nil, nil) }
                return (text(buffer), UInt16(bigEndian: v6.pointee.sin6_port))
            }
        default:
            return (nil, nil)
        }
    }

    /// What inet_ntop wrote: the buffer up to its terminating NUL (it is never empty).
    private static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
