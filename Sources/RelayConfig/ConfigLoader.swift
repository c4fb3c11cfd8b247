import Logging
import MilterSocket
import RelayPolicy
import RelayProbe
#if canImport(Glibc)
import Glibc
#endif

/// Reads relay-milter's TOML file into a validated `RelayMilterConfig`.
/// Unknown keys and bad values are errors naming the file, the line and what was expected.
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> RelayMilterConfig {
        try parse(try readFile(path), file: path)
    }

    public static func parse(_ source: String, file: String) throws(ConfigError) -> RelayMilterConfig {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(source)
        } catch {
            throw ConfigError(file: file, line: error.line, message: "TOML syntax: \(error.message)")
        }
        var config = RelayMilterConfig.defaults
        var top = Section(file: file, path: "", table: root)
        for (name, _) in ConfigSchema.sections where !name.contains(".") { top.expect(name) }
        // Each table the file has, in the schema's order; a nested one
        // (cache.ttl) through its parent, which knows it as a key.
        var opened: [String: Section] = ["": top]
        for (name, _) in ConfigSchema.sections {
            let parentName = name.split(separator: ".").dropLast().joined(separator: ".")
            let leaf = String(name.split(separator: ".").last ?? "")
            guard var parent = opened[parentName], var table = try parent.section(leaf) else { continue }
            for (other, _) in ConfigSchema.sections where other.hasPrefix(name + ".") {
                table.expect(String(other.dropFirst(name.count + 1)))
            }
            for key in ConfigSchema.keys where key.section == name {
                try key.read(&table, &config)
            }
            try table.finish()
            opened[name] = table
        }
        try top.finish()
        return config
    }

    /// `127.0.0.1:9469` or `[::1]:9469`, with an IP address.
    static func hostAndPort(_ text: String) -> (String, Int)? {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard IPAddress(host) != nil, let number = Int(port), (1...65535).contains(number) else { return nil }
        return (String(host), number)
    }

    /// Why the milter socket may not be used as configured: an inet socket
    /// that listens beyond loopback without `allow_remote_mta = true`.
    public static func socketExposure(_ milter: RelayMilterConfig.Milter) -> String? {
        guard !milter.socket.isLoopbackOnly, !milter.allowRemoteMTA else { return nil }
        return "\"\(milter.socket)\" listens beyond loopback, and the milter protocol has no authentication: "
            + "anyone who reaches it can pose as the MTA and have relay-milter test any host from this one. "
            + "Use a loopback address (inet:PORT@127.0.0.1) or a unix socket; if the MTA runs on another host, "
            + "set allow_remote_mta = true in [milter] and let only the MTA reach the port"
    }

    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }
    }

    /// The file's text, refused if others may write it.
    public static func readFile(_ path: String) throws(ConfigError) -> String {
        guard let file = fopen(path, "r") else {
            throw ConfigError(file: path, line: nil, message: "cannot read file: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        // Whoever can write this file decides what we relay. Checked on the
        // open file, so the file checked is the file read.
        var status = stat()
        if fstat(fileno(file), &status) == 0, status.st_mode & S_IWOTH != 0 {
            let mode = String(status.st_mode & 0o7777, radix: 8)
            throw ConfigError(file: path, line: nil, message: "writable by other users (mode 0\(mode)); run chmod o-w on it")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes += buffer[..<count] }
            if count < buffer.count { break }
        }
        guard ferror(file) == 0 else {
            throw ConfigError(file: path, line: nil, message: "cannot read file: \(String(cString: strerror(errno)))")
        }
        return try text(bytes, file: path)
    }

    /// The bytes as text, refused where they are not UTF-8 (TOML's encoding),
    /// rather than read with a replacement character the admin never wrote.
    static func text(_ bytes: [UInt8], file: String) throws(ConfigError) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var line = 1
        while case .scalarValue(let scalar) = decoder.decode(&iterator) {
            if scalar == "\n" { line += 1 }
        }
        throw ConfigError(file: file, line: line, message: "not UTF-8 text; save the file as UTF-8")
    }
}
