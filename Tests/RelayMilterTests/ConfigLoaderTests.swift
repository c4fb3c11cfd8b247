@testable import RelayMilter
import MilterKit
import MilterSocket
@testable import RelayConfig
import RelayPolicy
import RelayProbe
import Testing

struct ConfigLoaderTests {
    /// What the package installs: safe on a live MX before anyone edits it.
    @Test func shippedConfigIsLogOnlyWithItsPlaceholderFlagged() throws {
        let config = try ConfigLoader.load(path: "Config/relay-milter.toml")
        #expect(config.milter.socket == .inet(port: 10025, host: "127.0.0.1"))
        #expect(config.rules.mode == .logOnly)
        #expect(config.service.user == "relay-milter" && !config.service.runAsRoot)
        #expect(config.cache.path == "/var/lib/relay-milter/verdicts.sqlite")
        #expect(config.policy.localDomains.map(\.description) == ["example.test"])
        #expect(config.warnings.map(\.key) == ["policy.local_domains"])
    }

    /// A verdict is one enum case: its TTL and whether it is enforced come
    /// with it, and the config's keys, defaults and rendering follow.
    @Test(arguments: ProbeVerdict.allCases)
    func everyVerdictIsConfigurableFromItsCase(verdict: ProbeVerdict) throws {
        let defaults = RelayMilterConfig.defaults
        #expect(defaults.cache.ttl(for: verdict) == verdict.defaultTTLSeconds)
        #expect(defaults.enforcement.badVerdicts.contains(verdict) == verdict.enforcedByDefault)
        let rendered = ConfigRenderer.render(defaults)
        #expect(rendered.contains("\n\(verdict.rawValue) = \"\(DurationText.text(verdict.defaultTTLSeconds))\"\n"))
        let set = try ConfigLoader.parse("""
            [cache.ttl]
            \(verdict.rawValue) = "2h"
            [enforcement]
            verdicts = ["\(verdict.rawValue)"]
            """, file: "v.toml")
        #expect(set.cache.ttl(for: verdict) == 7200 && set.enforcement.badVerdicts == [verdict])
    }

    /// The sample says its values are the defaults but for five it marks:
    /// put those five back and it must be the defaults, or the file lies.
    @Test func shippedConfigShowsTheDefaultsButWhereItSaysSo() throws {
        let text = try String(contentsOfFile: "Config/relay-milter.toml", encoding: .utf8)
        #expect(text.components(separatedBy: "# Set for the package (default: ").count - 1 == 5)
        var config = try ConfigLoader.parse(text, file: "Config/relay-milter.toml")
        let defaults = RelayMilterConfig.defaults
        config.milter.socket = defaults.milter.socket
        config.service.user = defaults.service.user
        config.rules.mode = defaults.rules.mode
        config.policy.localDomains = defaults.policy.localDomains
        config.policy.trustedNetworks = defaults.policy.trustedNetworks
        #expect(config == defaults)
    }

    @Test func emptyFileMeansDefaults() throws {
        #expect(try ConfigLoader.parse("", file: "empty.toml") == RelayMilterConfig.defaults)
    }

    /// Exposure: nothing listens beyond this host unless the admin says so. By
    /// default the milter is a unix socket (mode 0660) and metrics are on
    /// loopback; the shipped sample keeps both on loopback.
    @Test func listenersStayLocalByDefault() throws {
        let defaults = RelayMilterConfig.defaults
        #expect(defaults.milter.socket == .unix(path: "/run/relay-milter/relay-milter.sock") && defaults.milter.socketMode == 0o660)
        #expect(defaults.metrics.host == "127.0.0.1")
        let sample = try ConfigLoader.load(path: "Config/relay-milter.toml")
        #expect(sample.milter.socket == .inet(port: 10025, host: "127.0.0.1"))
        #expect(sample.metrics.host == "127.0.0.1")
    }

    @Test func renderedConfigLoadsBackTheSame() throws {
        let config = try ConfigLoader.load(path: "Config/relay-milter.toml")
        #expect(try ConfigLoader.parse(ConfigRenderer.render(config), file: "rendered") == config)
    }

    /// Found by fuzz-config: a reply text with a line break (a multi-line SMTP
    /// reply) was printed raw, and check-config's output did not load back.
    @Test func renderedTextsWithLineBreaksAndQuotesLoadBack() throws {
        let source = #"""
        [reply]
        reject_text = "no {recipient} from {client}\nline two\t\"quoted\" \\ \u0001"
        """#
        let config = try ConfigLoader.parse(source, file: "multi-line.toml")
        #expect(config.replies.rejectText.contains("\n"))
        #expect(try ConfigLoader.parse(ConfigRenderer.render(config), file: "rendered") == config)
    }

    /// A `[` that starts a line inside a value is not a header.
    @Test func bracketsInsideValuesAreNotHeaders() {
        do {
            _ = try ConfigLoader.parse("x = [\n  [\n    1\n  ]\n]\n", file: "nested.toml")
            Issue.record("accepted an unknown key")
        } catch {
            #expect(error.description.contains("x: unknown key"), "\(error)")
        }
        do {
            _ = try ConfigLoader.parse("[reply]\nreject_text = \"\"\"\n[\n\"\"\"\n", file: "multi.toml")
        } catch {
            Issue.record("refused a multi-line string holding a bracket: \(error)")
        }
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let source: String
        let line: Int?
        let fragment: String
        var testDescription: String { fragment }
    }

    @Test(arguments: [
        Bad(source: "[policy]\nmode = \"enforce\"\nlocal_domain = [\"x.example\"]\n", line: 3, fragment: "policy.local_domain: unknown key; expected one of:"),
        Bad(source: "[policy]\n\ntrusted_networks = [\"10.0.0.1/8\"]\n", line: 3, fragment: "did you mean \"10.0.0.0/8\"?"),
        Bad(source: "[policy]\nmode = \"strict\"\n", line: 2, fragment: "expected enforce, tag-only or log-only, got \"strict\""),
        Bad(source: "[milter]\nsocket = \"tcp:25\"\n", line: 2, fragment: "milter.socket: \"tcp:25\" is not a socket"),
        Bad(source: "[milter]\nbacklog = \"many\"\n", line: 2, fragment: "milter.backlog: expected an integer, got string"),
        Bad(source: "[milter]\nsocket = \"inet:10025@0.0.0.0\"\n", line: 2,
            fragment: "milter.socket: \"inet:10025@0.0.0.0\" listens beyond loopback, and the milter protocol has no authentication"),
        Bad(source: "[milter]\nallow_remote_mta = false\nsocket = \"inet6:10025@::\"\n", line: 3, fragment: "set allow_remote_mta = true"),
        Bad(source: "[milter]\nsocket_mode = \"0999\"\n", line: 2, fragment: "expected an octal mode"),
        Bad(source: "[policy]\nlocal_domains = [\"bad..example\"]\n", line: 2, fragment: "bad domain label"),
        Bad(source: "[actions]\nrelay_denied = \"accept\"\n", line: 2, fragment: "expected reject, tempfail or tag"),
        Bad(source: "[polcy]\nmode = \"enforce\"\n", line: 1, fragment: "polcy: unknown key"),
        Bad(source: "[policy]\nmode = enforce\n", line: 2, fragment: "TOML syntax"),
        Bad(source: "[policy]\nmode = enforce\n", line: 2, fragment: "needs quotes (mode = \"enforce\")"),
        Bad(source: "[policy]\nmode = \"enforce\nlocal_domains = []\n", line: 2, fragment: "not closed on its line (a missing closing quote?)"),
        Bad(source: "[policy]\nlocal_domains = [\"a.example\"\n", line: 2, fragment: "a list is not closed"),
        Bad(source: "[service]\nlog_level = \"loud\"\n", line: 2, fragment: "expected one of trace, debug"),
        Bad(source: "[policy]\ntrust_authenticated = \"yes\"\n", line: 2, fragment: "expected true or false"),
        Bad(source: "[reply]\ntag_header = \"X Bad\"\n", line: 2, fragment: "expected a header name"),
        // A trap named like every listener would make the whole MTA a honeypot.
        Bad(source: "[trap]\nenabled = true\ndaemon_names = []\n", line: 3, fragment: "with none, the trap would be every listener"),
        Bad(source: "[trap]\ndaemon_names = [\"MTA-v4\"]\n", line: 2, fragment: "every listener of a stock Sendmail has"),
        Bad(source: "[trap]\ndaemon_names = [\"\(systemHostName())\"]\n", line: 2, fragment: "milter_macro_daemon_name = $myhostname"),
        // These aborted the process inside toml++ (found by fuzz-config).
        Bad(source: "[\nisten = \"[:*1]:9469\"", line: 1, fragment: "a table header must start with a name"),
        Bad(source: "[policy]\nmode = \"enforce\" # [\n  [[ \t# half-typed\n", line: 3, fragment: "a table header must start with a name"),
        Bad(source: "x = \"\"\"\n[\n\"\"\"\n[\r\n", line: 4, fragment: "a table header must start with a name"),
        Bad(source: "[policy]\n[ \u{e9}]\n", line: 2, fragment: "a table header must start with a name"),
        Bad(source: "[[.policy]]\n", line: 1, fragment: "a table header must start with a name"),
        Bad(source: "\u{FEFF}[\u{B0}]\n", line: 1, fragment: "a table header must start with a name"),
        Bad(source: "[policy]\nlocal_domains = [\"a.example\",\n  # next\n  }]\n", line: 4, fragment: "\"}\" where an array value should be"),
        Bad(source: "x = [}]\n", line: 1, fragment: "\"}\" where an array value should be"),
    ])
    func refusesWithFileAndLine(_ bad: Bad) {
        do {
            _ = try ConfigLoader.parse(bad.source, file: "relay.toml")
            Issue.record("accepted a bad config")
        } catch {
            #expect(error.file == "relay.toml")
            #expect(error.line == bad.line)
            #expect(error.description.contains(bad.fragment), "\(error.description)")
        }
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/relay-milter.toml") }
    }

    /// The tests send to a domain of the admin's: the one named, or the first
    /// local domain; only with neither the reserved .invalid, which warns.
    @Test func theTestDomainIsTheAdminsOwn() throws {
        let local = try ConfigLoader.parse("[policy]\nlocal_domains = [\"mx.example.org\", \"example.net\"]\n", file: "relay.toml")
        #expect(local.probeTestDomain == "mx.example.org" && local.probeSettings.testDomain == "mx.example.org")
        #expect(local.warnings.isEmpty)
        let named = try ConfigLoader.parse("[probe]\ntest_domain = \"relay-check.example.org\"\n[policy]\nlocal_domains = [\"example.net\"]\n", file: "relay.toml")
        #expect(named.probeTestDomain == "relay-check.example.org")
        let none = try ConfigLoader.parse("", file: "relay.toml")
        #expect(none.probeTestDomain == "relay-test.invalid" && none.warnings.map(\.key) == ["probe.test_domain"])
        let invalid = try ConfigLoader.parse("[probe]\ntest_domain = \"relay-test.invalid\"\n[policy]\nlocal_domains = [\"example.net\"]\n", file: "relay.toml")
        #expect(invalid.warnings.map(\.key) == ["probe.test_domain"])
        let off = try ConfigLoader.parse("[probe]\nenabled = false\n", file: "relay.toml")
        #expect(off.warnings.isEmpty)
    }

    @Test func registeredTestsWarnWhenTheirAliasesAreNotLocal() throws {
        let local = try ConfigLoader.parse("[policy]\nlocal_domains = [\"example.org\"]\n[registered]\nenabled = true\n", file: "relay.toml")
        #expect(local.warnings.isEmpty && local.registeredDomain == "example.org" && local.registeredContact == "postmaster@example.org")
        let elsewhere = try ConfigLoader.parse("[policy]\nlocal_domains = [\"example.org\"]\n[registered]\nenabled = true\ndomain = \"example.net\"\n",
                                               file: "relay.toml")
        #expect(elsewhere.warnings.map(\.key) == ["registered.domain"])
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[registered]\nprefix = \"a+b\"\n", file: "relay.toml") }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[registered]\nwindow = \"10s\"\n", file: "relay.toml") }
    }

    /// Latin-1 from an old editor: refused at its line, not read with a replacement character.
    @Test func bytesThatAreNotUTF8AreRefusedAtTheirLine() {
        let latin1: [UInt8] = Array("[reply]\nrelay_denied = \"Relais refus".utf8) + [0xE9] + Array("\"\n".utf8)
        #expect(throws: ConfigError(file: "relay.toml", line: 2, message: "not UTF-8 text; save the file as UTF-8")) {
            try ConfigLoader.text(latin1, file: "relay.toml")
        }
        #expect((try? ConfigLoader.text(Array("x = \"é\"\n".utf8), file: "relay.toml")) == "x = \"é\"\n")
    }
}

struct RecipientOutcomeTests {
    static let config: RelayMilterConfig = {
        var config = RelayMilterConfig.defaults
        config.policy.localDomains = [try! DomainPattern(parsing: "example.test")]
        return config
    }()

    @Test func rejectNamesTheRecipient() {
        let outcome = RecipientOutcome(
            RelayTransaction(clientAddress: IPAddress("203.0.113.5"), sender: "<>", recipient: "<victim@elsewhere.example>"),
            config: Self.config
        )
        #expect(outcome.action.applied == .reject)
        #expect(outcome.replyLine == "550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)")
    }

    @Test func tagValueNamesReasonAndClient() {
        var config = Self.config
        config.rules.mode = .tagOnly
        let outcome = RecipientOutcome(
            RelayTransaction(clientAddress: IPAddress("203.0.113.5"), sender: "<>", recipient: "<victim@elsewhere.example>"),
            config: config
        )
        #expect(outcome.action.applied == .tag)
        #expect(outcome.tagValue(client: IPAddress("203.0.113.5")) == "reject; reason=relay.denied; rcpt=<victim@elsewhere.example>; client=203.0.113.5")
    }
}

struct HostRulesConfigTests {
    @Test func enforcementAndModeMeetInHostRules() throws {
        let config = try ConfigLoader.parse("""
            [policy]
            mode = "tag-only"
            [enforcement]
            action = "reject"
            unknown_action = "tempfail"
            verdicts = ["open", "open_unconfirmed"]
            """, file: "e.toml")
        #expect(config.enforcement.badVerdicts == [.open, .openUnconfirmed])
        let listed = Decision(.deny, .openRelayHost, "")
        #expect(config.hostRules.resolve(listed) == ResolvedAction(configured: .reject, mode: .tagOnly))
        #expect(config.hostRules.resolve(listed).applied == .tag)
        #expect(config.hostRules.resolve(Decision(.deny, .untestedHost, "")).configured == .tempfail)
    }

    @Test(arguments: [
        ("[enforcement]\nverdicts = [\"opn\"]\n", 2, "\"opn\" is not a verdict"),
        ("[enforcement]\nunknown_action = \"reject\"\n", 2, "expected accept, tag or tempfail"),
        ("[cache.ttl]\nopen = \"7 days\"\n", 2, "is not a duration"),
        ("[cache.ttl]\nopen = \"200000000000000d\"\n", 2, "longer than 3650d"),
        ("[stats]\nretention = \"12h\"\n", 2, "from 1d to 3650d"),
        ("[cache]\npath = \"relative.sqlite\"\n", 2, "expected an absolute path"),
        ("[probe]\ntest_domain = \"bad domain\"\n", 2, "probe.test_domain"),
        ("[probe]\nsender = \"a@b\"\n", 2, "expected a plain local part"),
        ("[probe]\nsource_address = \"somewhere\"\n", 2, "is not an IP address"),
        ("[metrics]\nlisten = \"localhost:9469\"\n", 2, "expected ADDRESS:PORT"),
        ("[metrics]\nlisten = \"127.0.0.1:99999\"\n", 2, "expected ADDRESS:PORT"),
        ("[cache]\nbackend = \"postgres\"\n", 2, "expected sqlite or postgresql"),
        ("[cache.postgresql]\n\ntls = \"verify\"\n", 3, "expected disable, prefer or require"),
        ("[cache.postgresql]\npassword_file = \"pw\"\n", 2, "expected an absolute path"),
        ("[cache.postgresql]\ninstance = \"mx 1\"\n", 2, "without spaces"),
        ("[cache.postgresql]\npoll_interval = \"2h\"\n", 2, "from 1s to 1h"),
        ("[cache.postgresql]\nquery_timeout = \"0s\"\n", 2, "from 1s to 10m"),
        ("[cache.postgresql]\nport = 0\n", 2, "cache.postgresql.port"),
        ("[cache.postgresql]\nhostname = \"db\"\n", 2, "hostname"),
        ("[dnsbl]\nzones = [\"bl..example\"]\n", 2, "bl..example"),
        ("[dnsbl]\nresolver = \"ns.example:53\"\n", 2, "expected an IP address, ADDRESS:PORT"),
        ("[dnsbl]\naction = \"accept\"\n", 2, "expected reject, tempfail or tag"),
        ("[dnsbl]\ntimeout = 0\n", 2, "dnsbl.timeout"),
    ])
    func refusesBadEnforcementAndCacheSettings(source: String, line: Int, fragment: String) {
        do {
            _ = try ConfigLoader.parse(source, file: "x.toml")
            Issue.record("accepted a bad config")
        } catch {
            #expect(error.line == line)
            #expect(error.description.contains(fragment), "\(error.description)")
        }
    }

    @Test func sharedStoreSettingsLoadAndRenderBack() throws {
        // The settings load in any build; using them needs the PostgreSQL trait (below).
        let config = try ConfigLoader.parse("""
            [cache.postgresql]
            host = "db.example.test"
            port = 6432
            user = "mx"
            database = "fleet"
            password_file = "/etc/relay-milter/pg-password"
            tls = "require"
            instance = "mx1"
            poll_interval = "10s"
            query_timeout = "1m"
            """, file: "fleet.toml")
        let shared = config.cache.postgresql
        #expect(shared.host == "db.example.test" && shared.port == 6432 && shared.user == "mx")
        #expect(shared.database == "fleet" && shared.tls == .require)
        #expect(shared.passwordFile == "/etc/relay-milter/pg-password" && shared.instance == "mx1" && shared.pollIntervalSeconds == 10)
        #expect(shared.queryTimeoutSeconds == 60 && RelayMilterConfig.defaults.cache.postgresql.queryTimeoutSeconds == 30)
        #expect(try ConfigLoader.parse(ConfigRenderer.render(config), file: "r") == config)
        // The embedded database alone unless asked; the instance is this host by default.
        #expect(RelayMilterConfig.defaults.cache.backend == .sqlite)
        #expect(RelayMilterConfig.defaults.cache.postgresql.instance == systemHostName())
    }

    @Test func thePostgreSQLBackendNeedsABuildWithIt() throws {
        let text = "[cache]\nbackend = \"postgresql\"\n"
        #if PostgreSQL
        #expect(try ConfigLoader.parse(text, file: "fleet.toml").cache.backend == .postgresql)
        #else
        // A build without the trait (both sanitizer builds) refuses it at its line.
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "fleet.toml") }
        #expect(error?.line == 2)
        #expect(error?.description.contains("built without PostgreSQL support") == true, "\(String(describing: error))")
        #endif
    }

    @Test func dnsblSettingsLoadAndRenderBack() throws {
        let config = try ConfigLoader.parse("""
            [dnsbl]
            zones = ["bl.example.org", "dnsbl.example.net"]
            resolver = "[::1]:5353"
            action = "tag"
            """, file: "dnsbl.toml")
        #expect(config.dnsbl.zones == ["bl.example.org", "dnsbl.example.net"])
        #expect(config.dnsbl.resolverHost == "::1" && config.dnsbl.resolverPort == 5353)
        #expect(config.hostRules.resolve(Decision(.deny, .dnsblListed, "")).applied == .tag)
        #expect(try ConfigLoader.parse(ConfigRenderer.render(config), file: "r") == config)
        let plain = try ConfigLoader.parse("[dnsbl]\nresolver = \"127.0.0.53\"\n", file: "d.toml")
        #expect(plain.dnsbl.resolverHost == "127.0.0.53" && plain.dnsbl.resolverPort == 53)
        #expect(RelayMilterConfig.defaults.dnsbl.zones.isEmpty)
    }

    @Test func resolvConfsFirstNameserver() {
        #expect(ResolvConf.firstNameserver(in: "# x\nsearch example.org\nnameserver\t10.0.0.53\nnameserver 10.0.0.54\n") == IPAddress("10.0.0.53"))
        #expect(ResolvConf.firstNameserver(in: "nameserver ns.example\n") == nil)
    }

    @Test func metricsListenAcceptsIPv4AndIPv6() throws {
        let v6 = try ConfigLoader.parse("[metrics]\nlisten = \"[::1]:9470\"\n", file: "m.toml")
        #expect(v6.metrics.host == "::1" && v6.metrics.port == 9470)
        #expect(try ConfigLoader.parse(ConfigRenderer.render(v6), file: "r") == v6)
    }

    @Test func aMilterSocketBeyondLoopbackTakesItsOwnKey() throws {
        let hostless = try ConfigLoader.parse("[milter]\nsocket = \"inet:10025\"\n", file: "m.toml")
        #expect(hostless.milter.socket == .inet(port: 10025, host: "127.0.0.1"))
        let remote = try ConfigLoader.parse("[milter]\nsocket = \"inet:10025@0.0.0.0\"\nallow_remote_mta = true\n", file: "m.toml")
        #expect(remote.milter.allowRemoteMTA && remote.milter.socket == .inet(port: 10025, host: "0.0.0.0"))
        #expect(try ConfigLoader.parse(ConfigRenderer.render(remote), file: "r") == remote)
    }

    @Test func warningsInTheMannerOfPostfixs() throws {
        let quiet = try ConfigLoader.parse("[policy]\nlocal_domains = [\"mx.example.org\"]\n", file: "w.toml")
        #expect(quiet.warnings.isEmpty)
        let loud = try ConfigLoader.parse("""
            [milter]
            socket = "inet6:10025@::"
            allow_remote_mta = true
            [policy]
            local_domains = ["example.test", "example.org"]
            relay_domains = ["example.org", ".example.org"]
            trusted_networks = ["127.0.0.0/8", "::/0"]
            [service]
            run_as_root = true
            """, file: "w.toml")
        #expect(loud.warnings.map(\.key)
            == ["milter.socket", "service.run_as_root", "policy.trusted_networks", "policy.relay_domains", "policy.local_domains"])
        #expect(loud.warnings[2].description == "policy.trusted_networks: \"::/0\" trusts every client: any host on the Internet "
            + "may relay through this MTA as far as relay-milter is concerned, which then refuses nothing")
        #expect(loud.warnings[3].message.contains("\"example.org\" in both local_domains and relay_domains"))
        // With a user to become, run_as_root has nothing to say.
        let named = try ConfigLoader.parse("[service]\nuser = \"relay-milter\"\nrun_as_root = true\n[policy]\nlocal_domains = [\"mx.example.org\"]\n", file: "w.toml")
        #expect(named.warnings.isEmpty)
    }

    @Test func theSharedDatabaseGetsVerifiedTLSUnlessOnLoopback() throws {
        func load(_ lines: String) throws -> RelayMilterConfig {
            // The settings load in any build; the backend is set by hand, as a
            // build without the PostgreSQL trait refuses it in the file.
            var config = try ConfigLoader.parse("[policy]\nlocal_domains = [\"mx.example.org\"]\n[cache.postgresql]\n" + lines, file: "f.toml")
            config.cache.backend = .postgresql
            return config
        }
        #expect(try load("host = \"127.0.0.1\"\n").cache.postgresql.tls == .prefer)
        #expect(try load("host = \"::1\"\n").cache.postgresql.tls == .prefer)
        let remote = try load("host = \"db.example.org\"\nca_file = \"/etc/relay-milter/ca.pem\"\n")
        #expect(remote.cache.postgresql.tls == .require && remote.cache.postgresql.caFile == "/etc/relay-milter/ca.pem")
        #expect(remote.warnings.isEmpty)
        var rendered = try ConfigLoader.parse(ConfigRenderer.render(remote).replacingOccurrences(of: "backend = \"postgresql\"", with: ""), file: "r")
        rendered.cache.backend = .postgresql
        #expect(rendered == remote)
        let stripped = try load("host = \"192.0.2.5\"\ntls = \"prefer\"\n")
        #expect(stripped.warnings.map(\.key) == ["cache.postgresql.tls"])
        #expect(throws: ConfigError.self) { try load("ca_file = \"ca.pem\"\n") }
    }

    @Test func durations() throws {
        #expect(try DurationText.seconds("90") == 90)
        #expect(try DurationText.seconds("30m") == 1800)
        #expect(try DurationText.seconds("6h") == 21600)
        #expect(try DurationText.seconds("7d") == 604800)
        #expect(try DurationText.seconds("3650d") == DurationText.maximumSeconds)
        for text in ["7w", "", "d", "+5m", "-5m", "5 m", "٣d", "1.5h"] {
            #expect(throws: DurationText.ParseError.malformed(text)) { try DurationText.seconds(text) }
        }
        #expect(DurationText.text(604800) == "7d")
        #expect(DurationText.text(5400) == "90m")
        #expect(DurationText.text(0) == "0s")
    }

    /// Once a trap (arithmetic overflow) in `cache set --ttl` and in the config's parse child.
    @Test(arguments: ["3651d", "200000000000000d", "9223372036854775807s", "9223372036854775808", "99999999999999999999999d"])
    func durationsTooLongAreRefusedNotOverflowed(text: String) {
        #expect(throws: DurationText.ParseError.tooLong(text)) { try DurationText.seconds(text) }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[cache.ttl]\nopen = \"\(text)\"\n", file: "t.toml") }
    }
}
