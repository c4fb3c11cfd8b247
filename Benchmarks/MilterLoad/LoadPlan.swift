// What the load driver sends: a mix of message kinds a real MX sees, with the
// macros Postfix would send for each, chosen by a seeded generator so two
// runs against two milters send the same sequence.

/// The kinds of SMTP transaction in the mix.
enum MessageKind: String, CaseIterable, Codable {
    /// An outside client sending to a local domain: accepted.
    case local
    /// An outside client sending to a remote domain: the relay policy refuses it.
    case relay
    /// A client in the trusted networks sending out: accepted.
    case trusted
}

/// SplitMix64: small, fast and reproducible; not for anything but picking a mix.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Shares of each kind, e.g. "local=70,relay=20,trusted=10".
struct MessageMix: CustomStringConvertible {
    let weights: [(MessageKind, Int)]

    init?(_ text: String) {
        var weights: [(MessageKind, Int)] = []
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=")
            guard pair.count == 2, let kind = MessageKind(rawValue: String(pair[0])), let weight = Int(pair[1]), weight >= 0 else {
                return nil
            }
            weights.append((kind, weight))
        }
        guard weights.contains(where: { $0.1 > 0 }) else { return nil }
        self.weights = weights
    }

    func pick(using generator: inout SeededGenerator) -> MessageKind {
        let total = weights.reduce(0) { $0 + $1.1 }
        var roll = Int(generator.next() % UInt64(total))
        for (kind, weight) in weights {
            if roll < weight { return kind }
            roll -= weight
        }
        return weights.last!.0
    }

    var description: String { weights.map { "\($0.0.rawValue)=\($0.1)" }.joined(separator: ",") }
}

/// One SMTP session's worth of envelope data, and the macros Postfix sends with it.
struct SessionScript {
    let kind: MessageKind
    let clientAddress: String
    let clientName: String
    let sender: String
    let recipients: [String]
    let queueID: String

    init(kind: MessageKind, serial: UInt64, recipients count: Int, clients: Int) {
        self.kind = kind
        // Outside clients come from 127.2.0.0/16: loopback, so nothing ever leaves
        // the machine even if the milter under test were told to test them.
        let host = serial % UInt64(clients)
        clientAddress = kind == .trusted ? "127.0.0.1" : "127.2.\(host / 250).\(host % 250 + 1)"
        clientName = kind == .trusted ? "localhost" : "client\(host).outside.example"
        sender = kind == .trusted ? "<user\(serial % 1000)@example.test>" : "<sender\(serial % 5000)@outside.example>"
        let domain = kind == .local ? "example.test" : "elsewhere\(serial % 100).example"
        recipients = (0..<count).map { "<rcpt\((serial &+ UInt64($0)) % 10_000)@\(domain)>" }
        queueID = String(serial, radix: 16, uppercase: true)
    }

    /// The value Postfix would give each macro it knows at this point, or nil.
    func macro(_ name: String, recipient: String? = nil) -> String? {
        switch name {
        case "j": return "mx.bench.example"
        case "v": return "Postfix 3.7"
        case "_": return "\(clientName) [\(clientAddress)]"
        case "{daemon_name}": return "smtpd"
        case "{daemon_addr}": return "127.0.0.1"
        case "{client_addr}": return clientAddress
        case "{client_name}": return clientName
        case "{mail_addr}": return bare(sender)
        case "{mail_host}": return kind == .trusted ? nil : "outside.example"
        case "{mail_mailer}": return "smtp"
        case "{rcpt_addr}": return recipient.map(bare)
        case "{rcpt_host}": return recipient.map { String(bare($0).split(separator: "@").last ?? "") }
        case "{rcpt_mailer}": return recipient.map { _ in kind == .local ? "local" : "smtp" }
        case "i": return queueID
        default: return nil
        }
    }

    private func bare(_ address: String) -> String {
        String(address.dropFirst().dropLast())
    }
}

/// The macros Postfix sends by default (milter_*_macros) when the milter asks for none.
enum PostfixDefaultMacros {
    static let byStage: [UInt32: [String]] = [
        0: ["j", "{daemon_name}", "{daemon_addr}", "v", "_"],
        1: ["{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"],
        2: ["i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}", "{mail_mailer}"],
        3: ["i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"],
        4: ["i"],
        5: ["i"],
        6: ["i"],
    ]
}
