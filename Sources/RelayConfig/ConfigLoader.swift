import Logging
import MilterSocket
import RelayPolicy
import RelayProbe
import TOMLKit
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
        if let (line, problem) = TOMLParserGuard.firstCrashingConstruct(in: source) {
            throw ConfigError(file: file, line: line, message: "TOML syntax: \(problem)")
        }
        do {
            root = try TOMLTable(string: source)
        } catch let error as TOMLParseError {
            throw ConfigError(file: file, line: error.source.begin.line, message: "TOML syntax: \(TOMLSyntaxHint.explain(error.description))")
        } catch {
            throw ConfigError(file: file, line: nil, message: "TOML syntax: \(error)")
        }
        let document = Document(file: file, keyLines: KeyLines(source: source))
        var config = RelayMilterConfig.defaults
        var top = Section(document: document, path: "", table: root)

        if var milter = try top.section("milter") {
            let socketText = try milter.string("socket", default: config.milter.socket.description)
            do {
                config.milter.socket = try SocketSpec(parsing: socketText)
            } catch {
                throw milter.error("socket", error.description)
            }
            let mode = try milter.string("socket_mode", default: "0660")
            guard mode.count <= 4, let bits = UInt32(mode, radix: 8), bits <= 0o777 else {
                throw milter.error("socket_mode", "expected an octal mode such as \"0660\", got \"\(mode)\"")
            }
            config.milter.socketMode = bits
            config.milter.socketGroup = try milter.optionalString("socket_group")
            config.milter.backlog = Int32(try milter.int("backlog", default: 128, range: 1...65535))
            config.milter.timeoutSeconds = Int32(try milter.int("timeout", default: 30, range: 1...3600))
            config.milter.allowRemoteMTA = try milter.bool("allow_remote_mta", default: false)
            if let problem = Self.socketExposure(config.milter) { throw milter.error("socket", problem) }
            try milter.finish()
        }

        if var service = try top.section("service") {
            config.service.user = try service.optionalString("user")
            config.service.runAsRoot = try service.bool("run_as_root", default: false)
            config.service.pidFile = try service.optionalString("pid_file")
            let level = try service.string("log_level", default: "info")
            guard let parsed = Logger.Level(rawValue: level) else {
                throw service.error("log_level", "expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(level)\"")
            }
            config.service.logLevel = parsed
            config.service.shutdownTimeoutSeconds = try service.int("shutdown_timeout", default: 10, range: 0...600)
            try service.finish()
        }

        if var policy = try top.section("policy") {
            let mode = try policy.string("mode", default: "enforce")
            guard let parsed = PolicyMode(rawValue: mode) else {
                throw policy.error("mode", "expected enforce, tag-only or log-only, got \"\(mode)\"")
            }
            config.rules.mode = parsed
            config.policy.localDomains = try policy.list("local_domains", domainPattern)
            config.policy.relayDomains = try policy.list("relay_domains", domainPattern)
            if policy.has("trusted_networks") {
                config.policy.trustedNetworks = try policy.list("trusted_networks", networkBlock)
            }
            config.policy.trustAuthenticated = try policy.bool("trust_authenticated", default: true)
            config.policy.localIPLiterals = try policy.list("local_ip_literals") { text throws(BadValue) in
                let inner = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
                guard let address = IPAddress(inner.lowercased().hasPrefix("ipv6:") ? String(inner.dropFirst(5)) : inner) else {
                    throw BadValue("\"\(text)\" is not an IP address")
                }
                return address
            }
            config.policy.senderMustBeLocal = try policy.bool("sender_must_be_local", default: false)
            if policy.has("local_transports") {
                config.policy.localTransports = Set(try policy.list("local_transports") { text throws(BadValue) in
                    guard !text.isEmpty else { throw BadValue("empty transport name") }
                    return text
                })
            }
            try policy.finish()
        }

        if var metrics = try top.section("metrics") {
            config.metrics.enabled = try metrics.bool("enabled", default: true)
            let listen = try metrics.string("listen", default: "127.0.0.1:9469")
            guard let (host, port) = Self.hostAndPort(listen) else {
                throw metrics.error("listen", "expected ADDRESS:PORT such as \"127.0.0.1:9469\" or \"[::1]:9469\", got \"\(listen)\"")
            }
            config.metrics.host = host
            config.metrics.port = port
            config.metrics.statsDetail = try metrics.bool("stats_detail", default: false)
            try metrics.finish()
        }

        if var stats = try top.section("stats") {
            let seconds = try stats.duration("retention", default: 30 * 86400, range: 86400...DurationText.maximumSeconds)
            guard seconds % 3600 == 0 else {
                throw stats.error("retention", "expected whole hours, such as \"7d\" or \"36h\", got \"\(DurationText.text(seconds))\"")
            }
            config.stats.retentionHours = seconds / 3600
            try stats.finish()
        }

        if var publish = try top.section("publish") {
            config.publish.rbldnsdFile = try publish.optionalString("rbldnsd_file")
            config.publish.rbldnsdIPv6File = try publish.optionalString("rbldnsd_ipv6_file")
            for (key, minimum, keyPath) in [("rbldnsd_interval", 10, \RelayMilterConfig.Publish.intervalSeconds),
                                            ("rbldnsd_ttl", 60, \RelayMilterConfig.Publish.dnsTTLSeconds)] {
                config.publish[keyPath: keyPath] = try publish.duration(key, default: config.publish[keyPath: keyPath],
                                                                        range: minimum...DurationText.maximumSeconds)
            }
            try publish.finish()
        }

        if var dnsbl = try top.section("dnsbl") {
            config.dnsbl.zones = try dnsbl.list("zones") { text throws(BadValue) -> String in
                do { return try DomainName(parsing: text).text } catch { throw BadValue("\"\(text)\": \(error)") }
            }
            if let resolver = try dnsbl.optionalString("resolver") {
                if IPAddress(resolver) != nil {
                    (config.dnsbl.resolverHost, config.dnsbl.resolverPort) = (resolver, 53)
                } else if let (host, port) = Self.hostAndPort(resolver) {
                    (config.dnsbl.resolverHost, config.dnsbl.resolverPort) = (host, port)
                } else {
                    throw dnsbl.error("resolver", "expected an IP address, ADDRESS:PORT or [IPv6]:PORT, got \"\(resolver)\"")
                }
            }
            config.dnsbl.timeoutSeconds = try dnsbl.int("timeout", default: config.dnsbl.timeoutSeconds, range: 1...30)
            config.dnsbl.action = try dnsbl.refusalAction("action", default: config.dnsbl.action)
            config.dnsbl.rejectText = try dnsbl.string("reject_text", default: config.dnsbl.rejectText)
            config.dnsbl.tempfailText = try dnsbl.string("tempfail_text", default: config.dnsbl.tempfailText)
            config.dnsbl.tagHeader = try dnsbl.headerName("tag_header", default: config.dnsbl.tagHeader)
            try dnsbl.finish()
        }

        if var probe = try top.section("probe") {
            config.probe.enabled = try probe.bool("enabled", default: true)
            config.probe.port = try probe.int("port", default: 25, range: 1...65535)
            config.probe.heloName = try probe.optionalString("helo_name") ?? config.probe.heloName
            let domain = try probe.string("test_domain", default: config.probe.testDomain)
            do {
                config.probe.testDomain = try DomainName(parsing: domain).text
            } catch {
                throw probe.error("test_domain", "\"\(domain)\": \(error.description)")
            }
            config.probe.recipientLocalPart = try probe.string("recipient", default: config.probe.recipientLocalPart)
            config.probe.senderLocalPart = try probe.string("sender", default: config.probe.senderLocalPart)
            for key in ["recipient", "sender"] {
                let value = key == "sender" ? config.probe.senderLocalPart : config.probe.recipientLocalPart
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 > 32 && $0 < 127 && !"<>@%!\"\\,;:()[] ".utf8.contains($0) }) else {
                    throw probe.error(key, "expected a plain local part (letters, digits, dots, hyphens), got \"\(value)\"")
                }
            }
            config.probe.confirmWithData = try probe.bool("confirm_with_data", default: true)
            config.probe.pipelining = try probe.bool("pipelining", default: true)
            config.probe.connectTimeoutSeconds = try probe.int("connect_timeout", default: 10, range: 1...300)
            config.probe.commandTimeoutSeconds = try probe.int("command_timeout", default: 30, range: 1...600)
            config.probe.totalTimeoutSeconds = try probe.int("total_timeout", default: 120, range: 1...3600)
            if probe.has("exclude_networks") {
                config.probe.excludeNetworks = try probe.list("exclude_networks", networkBlock)
            }
            config.probe.allowLoopback = try probe.bool("allow_loopback", default: false)
            config.probe.maxInFlight = try probe.int("max_in_flight", default: 32, range: 1...10000)
            config.probe.queueSize = try probe.int("queue_size", default: 1000, range: 1...1_000_000)
            config.probe.networkIntervalSeconds = try probe.int("network_interval", default: 60, range: 0...86400)
            if let source = try probe.optionalString("source_address") {
                guard let address = IPAddress(source) else { throw probe.error("source_address", "\"\(source)\" is not an IP address") }
                config.probe.sourceAddress = address
            }
            try probe.finish()
        }

        if var cache = try top.section("cache") {
            config.cache.path = try cache.string("path", default: config.cache.path)
            guard config.cache.path.hasPrefix("/") else { throw cache.error("path", "expected an absolute path, got \"\(config.cache.path)\"") }
            if var ttl = try cache.section("ttl") {
                for verdict in ProbeVerdict.allCases where ttl.has(verdict.rawValue) {
                    config.cache.ttlSeconds[verdict] = try ttl.duration(verdict.rawValue, default: 0, range: 0...DurationText.maximumSeconds)
                }
                try ttl.finish()
            }
            let backend = try cache.string("backend", default: config.cache.backend.rawValue)
            guard let parsedBackend = RelayMilterConfig.Cache.Backend(rawValue: backend) else {
                throw cache.error("backend", "expected sqlite or postgresql, got \"\(backend)\"")
            }
            #if !PostgreSQL
            if parsedBackend == .postgresql {
                throw cache.error("backend", "this relay-milter was built without PostgreSQL support (the package trait PostgreSQL); use \"sqlite\"")
            }
            #endif
            config.cache.backend = parsedBackend
            if var shared = try cache.section("postgresql") {
                try parseSharedStore(&shared, into: &config.cache.postgresql)
                try shared.finish()
            }
            try cache.finish()
        }

        if var enforcement = try top.section("enforcement") {
            let verdicts = try enforcement.list("verdicts") { text throws(BadValue) -> ProbeVerdict in
                guard let verdict = ProbeVerdict(rawValue: text) else {
                    throw BadValue("\"\(text)\" is not a verdict; expected one of \(ProbeVerdict.spellings)")
                }
                return verdict
            }
            if enforcement.has("verdicts") { config.enforcement.badVerdicts = Set(verdicts) }
            config.enforcement.action = try enforcement.refusalAction("action", default: .reject)
            let unknown = try enforcement.string("unknown_action", default: "accept")
            guard let parsedUnknown = PolicyAction(rawValue: unknown), parsedUnknown != .reject else {
                throw enforcement.error("unknown_action", "expected accept, tag or tempfail, got \"\(unknown)\"")
            }
            config.enforcement.unknownAction = parsedUnknown
            config.enforcement.rejectText = try enforcement.string("reject_text", default: config.enforcement.rejectText)
            config.enforcement.tempfailText = try enforcement.string("tempfail_text", default: config.enforcement.tempfailText)
            config.enforcement.tagHeader = try enforcement.headerName("tag_header", default: config.enforcement.tagHeader)
            try enforcement.finish()
        }

        if var actions = try top.section("actions") {
            for (key, reason) in RelayMilterConfig.actionKeys where actions.has(key) {
                config.rules.actions[reason] = try actions.refusalAction(key, default: .reject)
            }
            try actions.finish()
        }

        if var reply = try top.section("reply") {
            config.replies.rejectText = try reply.string("reject_text", default: config.replies.rejectText)
            config.replies.tempfailText = try reply.string("tempfail_text", default: config.replies.tempfailText)
            config.replies.tagHeader = try reply.headerName("tag_header", default: config.replies.tagHeader)
            try reply.finish()
        }
        try top.finish()
        return config
    }

    /// `[cache.postgresql]`: where the fleet's shared database is.
    private static func parseSharedStore(_ section: inout Section, into shared: inout RelayMilterConfig.Cache.Shared) throws(ConfigError) {
        shared.host = try section.string("host", default: shared.host)
        guard !shared.host.isEmpty else { throw section.error("host", "expected a host name or address") }
        shared.port = try section.int("port", default: shared.port, range: 1...65535)
        shared.user = try section.string("user", default: shared.user)
        shared.database = try section.string("database", default: shared.database)
        shared.passwordFile = try section.optionalString("password_file")
        if let file = shared.passwordFile, !file.hasPrefix("/") {
            throw section.error("password_file", "expected an absolute path, got \"\(file)\"")
        }
        let tls = try section.string("tls", default: shared.hostIsLoopback ? "prefer" : "require")
        guard let mode = RelayMilterConfig.Cache.Shared.TLS(rawValue: tls) else {
            throw section.error("tls", "expected disable, prefer or require, got \"\(tls)\"")
        }
        shared.tls = mode
        shared.caFile = try section.optionalString("ca_file")
        if let file = shared.caFile, !file.hasPrefix("/") {
            throw section.error("ca_file", "expected an absolute path, got \"\(file)\"")
        }
        shared.instance = try section.optionalString("instance") ?? shared.instance
        guard !shared.instance.isEmpty, shared.instance.utf8.count <= 255, shared.instance.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw section.error("instance", "expected a name of printable characters without spaces, got \"\(shared.instance)\"")
        }
        shared.pollIntervalSeconds = try section.duration("poll_interval", default: shared.pollIntervalSeconds, range: 1...3600)
        shared.queryTimeoutSeconds = try section.duration("query_timeout", default: shared.queryTimeoutSeconds, range: 1...600)
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

    private static func domainPattern(_ text: String) throws(BadValue) -> DomainPattern {
        do { return try DomainPattern(parsing: text) } catch { throw BadValue("\"\(text)\": \(error.description)") }
    }

    private static func networkBlock(_ text: String) throws(BadValue) -> NetworkBlock {
        do { return try NetworkBlock(parsing: text) } catch { throw BadValue(error.description) }
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
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Why one value in a list is unacceptable; `Section.list` adds the key and line.
private struct BadValue: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The file being read, for error positions.
private struct Document {
    let file: String
    let keyLines: KeyLines
}

/// One TOML table being read: typed getters that remember which keys were
/// asked about, so `finish()` can name every key nobody expects.
private struct Section {
    let document: Document
    let path: String
    let table: TOMLTable
    /// Every key some getter asked about, present or not.
    private var known: Set<String> = []

    init(document: Document, path: String, table: TOMLTable) {
        self.document = document
        self.path = path
        self.table = table
    }

    func qualified(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func error(_ key: String, _ message: String) -> ConfigError {
        let line = document.keyLines.line(of: qualified(key)) ?? document.keyLines.line(of: path)
        return ConfigError(file: document.file, line: line, message: "\(qualified(key)): \(message)")
    }

    mutating func has(_ key: String) -> Bool {
        known.insert(key)
        return table.contains(key: key)
    }

    mutating func section(_ key: String) throws(ConfigError) -> Section? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        guard let inner = value.table else { throw error(key, "expected a table [\(qualified(key))]") }
        return Section(document: document, path: qualified(key), table: inner)
    }

    mutating func string(_ key: String, default fallback: String) throws(ConfigError) -> String {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let text = value.string else { throw error(key, "expected a string, got \(value.type)") }
        return text
    }

    mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        let text = try string(key, default: "")
        return text.isEmpty ? nil : text
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let flag = value.bool else { throw error(key, "expected true or false, got \(value.type)") }
        return flag
    }

    /// What to do with refused mail: reject, tempfail or tag (accepting is what the mode switch is for).
    mutating func refusalAction(_ key: String, default fallback: PolicyAction) throws(ConfigError) -> PolicyAction {
        let text = try string(key, default: fallback.rawValue)
        guard let action = PolicyAction(rawValue: text), action != .accept else {
            throw error(key, "expected reject, tempfail or tag, got \"\(text)\"")
        }
        return action
    }

    /// A header field name for tagging.
    mutating func headerName(_ key: String, default fallback: String) throws(ConfigError) -> String {
        let header = try string(key, default: fallback)
        guard ConfigLoader.isHeaderName(header) else {
            throw error(key, "expected a header name (printable ASCII, no spaces or colons), got \"\(header)\"")
        }
        return header
    }

    /// A duration (`"30m"`, `"7d"`) in seconds, within `range`.
    mutating func duration(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(key, default: DurationText.text(fallback))
        let seconds: Int
        do { seconds = try DurationText.seconds(text) } catch { throw self.error(key, error.description) }
        guard range.contains(seconds) else {
            throw error(key, "expected a duration from \(DurationText.text(range.lowerBound)) to \(DurationText.text(range.upperBound)), got \"\(text)\"")
        }
        return seconds
    }

    mutating func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        known.insert(key)
        guard let value = table[key] else { return fallback }
        guard let number = value.int else { throw error(key, "expected an integer, got \(value.type)") }
        guard range.contains(number) else {
            throw error(key, "expected an integer from \(range.lowerBound) to \(range.upperBound), got \(number)")
        }
        return number
    }

    /// An array of strings, each converted by `parse` (which throws a message).
    mutating func list<T>(_ key: String, _ parse: (String) throws(BadValue) -> T) throws(ConfigError) -> [T] {
        known.insert(key)
        guard let value = table[key] else { return [] }
        guard let array = value.array else { throw error(key, "expected an array of strings, got \(value.type)") }
        var result: [T] = []
        for element in array {
            guard let text = element.string else { throw error(key, "expected an array of strings, found \(element.type)") }
            do {
                result.append(try parse(text))
            } catch {
                throw self.error(key, error.message)
            }
        }
        return result
    }

    func finish() throws(ConfigError) {
        let expected = known.sorted().joined(separator: ", ")
        for key in table.keys.sorted() where !known.contains(key) {
            let message = "unknown key; expected one of: \(expected)"
            throw error(key, message)
        }
    }
}
