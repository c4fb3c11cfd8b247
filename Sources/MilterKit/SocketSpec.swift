/// A libmilter socket specification: `unix:/path` (or `local:`), `inet:PORT@HOST`, `inet6:PORT@HOST`.
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
            let host = parts.count == 2 ? String(parts[1]) : (scheme == "inet" ? "0.0.0.0" : "::")
            self = scheme == "inet" ? .inet(port: port, host: host) : .inet6(port: port, host: host)
        default:
            throw .malformed(text)
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
