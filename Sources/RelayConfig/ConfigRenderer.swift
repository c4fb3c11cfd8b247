import RelayPolicy
import RelayProbe

/// The effective config as TOML, every key spelled out, for `check-config`.
/// The output loads back to the same config.
public enum ConfigRenderer {
    public static func render(_ config: RelayMilterConfig) -> String {
        func quoted(_ text: String) -> String {
            // A TOML basic string: backslash, quote and control characters escaped
            // (a reply text may hold line breaks), so the output loads back.
            var result = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\\": result += "\\\\"
                case "\"": result += "\\\""
                case "\n": result += "\\n"
                case "\t": result += "\\t"
                case "\r": result += "\\r"
                case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: result.unicodeScalars.append(scalar)
                }
            }
            return result + "\""
        }
        func list(_ items: [String]) -> String {
            "[" + items.map(quoted).joined(separator: ", ") + "]"
        }
        let mode = String(config.milter.socketMode, radix: 8)
        var lines = [
            "[milter]",
            "socket = \(quoted(config.milter.socket.description))",
            "socket_mode = \(quoted(String(repeating: "0", count: max(0, 4 - mode.count)) + mode))",
            "socket_group = \(quoted(config.milter.socketGroup ?? ""))",
            "backlog = \(config.milter.backlog)",
            "timeout = \(config.milter.timeoutSeconds)",
            "allow_remote_mta = \(config.milter.allowRemoteMTA)",
            "",
            "[service]",
            "user = \(quoted(config.service.user ?? ""))",
            "run_as_root = \(config.service.runAsRoot)",
            "pid_file = \(quoted(config.service.pidFile ?? ""))",
            "log_level = \(quoted(config.service.logLevel.rawValue))",
            "shutdown_timeout = \(config.service.shutdownTimeoutSeconds)",
            "",
            "[metrics]",
            "enabled = \(config.metrics.enabled)",
            "listen = \(quoted(config.metrics.host.contains(":") ? "[\(config.metrics.host)]:\(config.metrics.port)" : "\(config.metrics.host):\(config.metrics.port)"))",
            "stats_detail = \(config.metrics.statsDetail)",
            "",
            "[stats]",
            "retention = \(quoted(DurationText.text(config.stats.retentionHours * 3600)))",
            "",
            "[publish]",
            "rbldnsd_file = \(quoted(config.publish.rbldnsdFile ?? ""))",
            "rbldnsd_ipv6_file = \(quoted(config.publish.rbldnsdIPv6File ?? ""))",
            "rbldnsd_interval = \(quoted(DurationText.text(config.publish.intervalSeconds)))",
            "rbldnsd_ttl = \(quoted(DurationText.text(config.publish.dnsTTLSeconds)))",
            "",
            "[dnsbl]",
            "zones = \(list(config.dnsbl.zones))",
            "resolver = \(quoted(config.dnsbl.resolverHost.map { $0.contains(":") ? "[\($0)]:\(config.dnsbl.resolverPort)" : "\($0):\(config.dnsbl.resolverPort)" } ?? ""))",
            "timeout = \(config.dnsbl.timeoutSeconds)",
            "action = \(quoted(config.dnsbl.action.rawValue))",
            "reject_text = \(quoted(config.dnsbl.rejectText))",
            "tempfail_text = \(quoted(config.dnsbl.tempfailText))",
            "tag_header = \(quoted(config.dnsbl.tagHeader))",
            "",
            "[policy]",
            "mode = \(quoted(config.rules.mode.rawValue))",
            "local_domains = \(list(config.policy.localDomains.map(\.description)))",
            "relay_domains = \(list(config.policy.relayDomains.map(\.description)))",
            "trusted_networks = \(list(config.policy.trustedNetworks.map(\.description)))",
            "trust_authenticated = \(config.policy.trustAuthenticated)",
            "local_ip_literals = \(list(config.policy.localIPLiterals.map(\.description)))",
            "sender_must_be_local = \(config.policy.senderMustBeLocal)",
            "local_transports = \(list(config.policy.localTransports.sorted()))",
            "",
            "[probe]",
            "enabled = \(config.probe.enabled)",
            "port = \(config.probe.port)",
            "helo_name = \(quoted(config.probe.heloName))",
            "test_domain = \(quoted(config.probe.testDomain))",
            "recipient = \(quoted(config.probe.recipientLocalPart))",
            "sender = \(quoted(config.probe.senderLocalPart))",
            "confirm_with_data = \(config.probe.confirmWithData)",
            "pipelining = \(config.probe.pipelining)",
            "connect_timeout = \(config.probe.connectTimeoutSeconds)",
            "command_timeout = \(config.probe.commandTimeoutSeconds)",
            "total_timeout = \(config.probe.totalTimeoutSeconds)",
            "exclude_networks = \(list(config.probe.excludeNetworks.map(\.description)))",
            "allow_loopback = \(config.probe.allowLoopback)",
            "source_address = \(quoted(config.probe.sourceAddress.map { "\($0)" } ?? ""))",
            "max_in_flight = \(config.probe.maxInFlight)",
            "queue_size = \(config.probe.queueSize)",
            "network_interval = \(config.probe.networkIntervalSeconds)",
            "",
            "[cache]",
            "path = \(quoted(config.cache.path))",
            "backend = \(quoted(config.cache.backend.rawValue))",
            "",
            "[cache.ttl]",
        ] + ProbeVerdict.allCases.sorted(by: { $0.rawValue < $1.rawValue }).map {
            "\($0.rawValue) = \(quoted(DurationText.text(config.cache.ttl(for: $0))))"
        } + [
            "",
            "[cache.postgresql]",
            "host = \(quoted(config.cache.postgresql.host))",
            "port = \(config.cache.postgresql.port)",
            "user = \(quoted(config.cache.postgresql.user))",
            "database = \(quoted(config.cache.postgresql.database))",
            "password_file = \(quoted(config.cache.postgresql.passwordFile ?? ""))",
            "tls = \(quoted(config.cache.postgresql.tls.rawValue))",
            "ca_file = \(quoted(config.cache.postgresql.caFile ?? ""))",
            "instance = \(quoted(config.cache.postgresql.instance))",
            "poll_interval = \(quoted(DurationText.text(config.cache.postgresql.pollIntervalSeconds)))",
            "query_timeout = \(quoted(DurationText.text(config.cache.postgresql.queryTimeoutSeconds)))",
            "",
            "[enforcement]",
            "verdicts = \(list(config.enforcement.badVerdicts.map(\.rawValue).sorted()))",
            "action = \(quoted(config.enforcement.action.rawValue))",
            "unknown_action = \(quoted(config.enforcement.unknownAction.rawValue))",
            "reject_text = \(quoted(config.enforcement.rejectText))",
            "tempfail_text = \(quoted(config.enforcement.tempfailText))",
            "tag_header = \(quoted(config.enforcement.tagHeader))",
            "",
            "[actions]",
        ]
        for (key, reason) in RelayMilterConfig.actionKeys {
            lines.append("\(key) = \(quoted((config.rules.actions[reason] ?? .reject).rawValue))")
        }
        lines += [
            "",
            "[reply]",
            "reject_text = \(quoted(config.replies.rejectText))",
            "tempfail_text = \(quoted(config.replies.tempfailText))",
            "tag_header = \(quoted(config.replies.tagHeader))",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
