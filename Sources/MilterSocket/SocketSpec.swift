#if canImport(Glibc)
import Glibc
#endif

/// A libmilter socket specification: `unix:/path` (or `local:`), `inet:PORT@HOST`, `inet6:PORT@HOST`.
///
/// Unlike libmilter, which listens on every address when HOST is left out,
/// a host-less `inet:PORT` means loopback here: the milter protocol has no
/// authentication, so whoever reaches the socket can pose as the MTA.
public enum SocketSpec: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case inet(port: UInt16, host: String)
    case inet6(port: UInt16, host: String)

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)

        public var description: String {
            switch self {
            case .malformed(let text):
                "\"\(text)\" is not a socket: expected unix:/path, inet:PORT@HOST or inet6:PORT@HOST"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        guard let colon = text.firstIndex(of: ":") else { throw .malformed(text) }
        let scheme = text[..<colon].lowercased()
        let rest = String(text[text.index(after: colon)...])
        switch scheme {
        case "unix", "local":
            guard rest.hasPrefix("/") else { throw .malformed(text) }
            self = .unix(path: rest)
        case "inet", "inet6":
            let parts = rest.split(separator: "@", maxSplits: 1)
            guard let port = parts.first.flatMap({ UInt16($0) }), port > 0 else { throw .malformed(text) }
            let host = parts.count == 2 ? String(parts[1]) : (scheme == "inet" ? "127.0.0.1" : "::1")
            self = scheme == "inet" ? .inet(port: port, host: host) : .inet6(port: port, host: host)
        default:
            throw .malformed(text)
        }
    }

    /// Whether only this host can connect: a unix socket, or an inet socket
    /// bound to a loopback address. A host name other than `localhost` may
    /// resolve anywhere, so it does not count.
    public var isLoopbackOnly: Bool {
        switch self {
        case .unix:
            return true
        case .inet(_, let host):
            if host == "localhost" { return true }
            var address = in_addr()
            return inet_pton(AF_INET, host, &address) == 1 && UInt32(bigEndian: address.s_addr) >> 24 == 127
        case .inet6(_, let host):
            if host == "localhost" || host == "ip6-localhost" { return true }
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return false }
            return withUnsafeBytes(of: &address) { Array($0) } == Array(repeating: 0, count: 15) + [1]
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .inet(let port, let host): "inet:\(port)@\(host)"
        case .inet6(let port, let host): "inet6:\(port)@\(host)"
        }
    }
}
