import MilterKit
import RelayPolicy

/// What Postfix and Sendmail really put in the macros relay-milter reads,
/// read in one place. Each form below was seen from the real MTAs in the
/// end-to-end suites (Tests/EndToEnd/test_mta_conformance.py) and is
/// checked, form by form, in MTAMacrosTests.
///
/// | macro | Postfix | Sendmail |
/// |---|---|---|
/// | `{client_addr}` | `192.0.2.1`, `IPv6:2001:db8::1`; `127.0.0.1` for non-SMTP mail | `192.0.2.1`, `IPv6:2001:db8:0:0:0:0:0:1` (uncompressed) |
/// | `v` | `Postfix 3.7.11` | `8.17.1.9` |
/// | `{daemon_name}` | `milter_macro_daemon_name` (`$myhostname`; Debian's submission service sets `ORIGINATING`) | `DAEMON_OPTIONS`' `Name=` |
/// | `{auth_authen}` | the SASL login as given (`alice@example.test`); absent when not authenticated | likewise |
/// | `{rcpt_mailer}` | the transport; `error` for every address in a virtual alias domain *and* for a recipient it refused | the mailer after virtusertable and mailertable |
/// | `{rcpt_host}` | the next hop; for a refused recipient the reply's status alone (`5.7.1`) | the host |
/// | `{rcpt_addr}` | the address before any alias expansion, qualified; for a refused recipient the reply's text; without brackets for non-SMTP mail | the address after virtusertable; the bare user for the local mailer |
///
/// Debian's Sendmail never sends a recipient it refused (it is built without
/// the option that honours `SMFIP_RCPT_REJ`). Postfix sends the macros this
/// milter asks for at negotiation whatever its `milter_*_macros` say, even at
/// `milter_protocol = 2`; the shipped Sendmail lines name them as well. `{daemon_addr}` and `{if_addr}`
/// are not read: which of the MTA's addresses took the connection decides
/// nothing here.
enum MTAMacros {
    /// The client's address as the MTA gave it, or why there is none.
    struct ClientAddress: Equatable {
        enum Unknown: String, Equatable, CaseIterable {
            /// Neither `{client_addr}` nor the connect callback's socket address.
            case absent
            /// Something was given, and none of it is an address (`unknown`, a name).
            case unparsable
        }

        var address: IPAddress?
        /// Set when `address` is nil.
        var unknown: Unknown?
        /// The `{client_addr}` text when it could not be read (for the log, untrusted).
        var unreadMacro: String?
    }

    /// `{client_addr}` first, then the connect callback's socket address (which
    /// Postfix leaves unset for an unknown client, and whose family libmilter
    /// reports only for IPv4 and IPv6).
    static func clientAddress(macro: String?, socketAddress: String?) -> ClientAddress {
        if let macro, let address = address(macro) {
            return ClientAddress(address: address)
        }
        if let socketAddress, let address = IPAddress(socketAddress) {
            return ClientAddress(address: address)
        }
        let given = (macro?.isEmpty == false) || socketAddress != nil
        return ClientAddress(unknown: given ? .unparsable : .absent, unreadMacro: macro)
    }

    /// An address in either MTA's spelling: the `IPv6:` tag of RFC 5321's
    /// address literals (any case), without the brackets; a zone (`%eth0`),
    /// which only link-local addresses carry and which no network in the config
    /// names. IPv4-mapped IPv6 becomes IPv4 (IPAddress does that).
    static func address(_ text: String) -> IPAddress? {
        var text = Substring(text)
        if hasIPv6Tag(text) {
            text = text.dropFirst(5)
            if let zone = text.firstIndex(of: "%") { text = text[..<zone] }
            // The tag promises IPv6: a dotted quad after it is not one.
            guard text.contains(":") else { return nil }
            return IPAddress(text)
        }
        if let zone = text.firstIndex(of: "%"), text.contains(":") { text = text[..<zone] }
        return IPAddress(text)
    }

    /// `IPv6:` in any case, compared byte by byte: this runs at every connection.
    private static func hasIPv6Tag(_ text: Substring) -> Bool {
        let tag = "ipv6:".utf8
        let head = text.utf8.prefix(tag.count)
        guard head.count == tag.count else { return false }
        return zip(head, tag).allSatisfy { byte, lower in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 == lower : byte == lower
        }
    }

    /// The recipient as the MTA resolved it.
    static func routing(_ macros: Macros, mta: MTAKind) -> MTARouting {
        MTARouting(
            transport: macros["{rcpt_mailer}"],
            nextHop: macros["{rcpt_host}"],
            address: macros["{rcpt_addr}"],
            resolvedAfterAliases: mta.resolvesAliasesBeforeMilters
        )
    }
}

/// Which MTA speaks, from its `v` macro: it decides what `{rcpt_addr}` means.
public enum MTAKind: String, Sendable, Equatable, CaseIterable {
    case postfix
    case sendmail
    /// No `v`, or one that names neither: the macros are read as Postfix's,
    /// the reading under which a rewritten recipient counts against itself.
    case unknown

    /// Postfix's `v` is `Postfix 3.7.11`; Sendmail's its bare version, `8.17.1.9`.
    init(version: String?) {
        guard let version, let first = version.first else {
            self = .unknown
            return
        }
        if version.hasPrefix("Postfix") {
            self = .postfix
        } else if first.isASCIIDigitOrDot, version.split(separator: ".").count >= 3, version.allSatisfy(\.isASCIIDigitOrDot) {
            self = .sendmail
        } else {
            self = .unknown
        }
    }

    /// Sendmail resolves a recipient through its virtusertable (and
    /// mailertable) before a milter sees it; Postfix expands aliases only
    /// after the message is queued.
    var resolvesAliasesBeforeMilters: Bool { self == .sendmail }
}

private extension Character {
    var isASCIIDigitOrDot: Bool { self == "." || ("0"..."9").contains(self) }
}
