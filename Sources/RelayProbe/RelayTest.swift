/// One anonymous-mode relay test: a MAIL FROM and a RCPT TO that, if the
/// target accepts them, mean it would relay to a domain it does not own.
public struct RelayTest: Sendable, Equatable, Hashable {
    public let name: String
    public let mailFrom: String
    public let rcptTo: String

    public init(name: String, mailFrom: String, rcptTo: String) {
        self.name = name
        self.mailFrom = mailFrom
        self.rcptTo = rcptTo
    }
}

/// What the battery is built from.
public struct BatteryParameters: Sendable, Equatable {
    /// A domain the operator controls and the target does not host.
    public var testDomain: String
    /// Local part of the recipient in the test domain.
    public var recipientLocalPart: String
    /// Local part of senders we forge at various domains.
    public var senderLocalPart: String
    /// A sender domain that is neither ours nor the target's.
    public var thirdPartyDomain: String

    public init(testDomain: String, recipientLocalPart: String = "relaytest", senderLocalPart: String = "antispam",
                thirdPartyDomain: String = "example.net") {
        self.testDomain = testDomain
        self.recipientLocalPart = recipientLocalPart
        self.senderLocalPart = senderLocalPart
        self.thirdPartyDomain = thirdPartyDomain
    }
}

/// The union of the public testers' variants: nmap smtp-open-relay's 16 and
/// the MAPS-style extras. `hostname` is the target's own name (from its banner
/// or EHLO reply; its IP literal when it gave none), `ipLiteral` its address
/// as `[192.0.2.1]` or `[IPv6:...]`.
public enum TestBattery {
    public static func tests(_ p: BatteryParameters, hostname: String, ipLiteral: String) -> [RelayTest] {
        let d = p.testDomain, r = p.recipientLocalPart, s = p.senderLocalPart
        let h = hostname, i = ipLiteral
        return [
            RelayTest(name: "null sender", mailFrom: "<>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "sender in recipient domain", mailFrom: "<\(s)@\(d)>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "sender at target hostname", mailFrom: "<\(s)@\(h)>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "sender at target IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "percent hack via IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(r)%\(d)@\(i)>"),
            RelayTest(name: "percent hack via hostname", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(r)%\(d)@\(h)>"),
            RelayTest(name: "quoted whole address", mailFrom: "<\(s)@\(i)>", rcptTo: "<\"\(r)@\(d)\">"),
            RelayTest(name: "quoted percent", mailFrom: "<\(s)@\(i)>", rcptTo: "<\"\(r)%\(d)\">"),
            RelayTest(name: "double @ via IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(r)@\(d)@\(i)>"),
            RelayTest(name: "quoted local part via IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<\"\(r)@\(d)\"@\(i)>"),
            RelayTest(name: "double @ via hostname", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(r)@\(d)@\(h)>"),
            RelayTest(name: "source route via IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<@\(i):\(r)@\(d)>"),
            RelayTest(name: "source route via hostname", mailFrom: "<\(s)@\(i)>", rcptTo: "<@\(h):\(r)@\(d)>"),
            RelayTest(name: "bang path", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(d)!\(r)>"),
            RelayTest(name: "bang path via IP literal", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(d)!\(r)@\(i)>"),
            RelayTest(name: "bang path via hostname", mailFrom: "<\(s)@\(i)>", rcptTo: "<\(d)!\(r)@\(h)>"),
            RelayTest(name: "spamtest@localhost sender", mailFrom: "<spamtest@localhost>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "unqualified sender", mailFrom: "<spamtest>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "third-party sender", mailFrom: "<\(s)@\(p.thirdPartyDomain)>", rcptTo: "<\(r)@\(d)>"),
            RelayTest(name: "postmaster@host sender", mailFrom: "<postmaster@\(h)>", rcptTo: "<\(r)@\(d)>"),
        ]
    }
}
