/// The steps of the milter protocol a session can see.
public enum MilterStage: String, CaseIterable, Sendable {
    case connect, helo, mail, rcpt, data, eom
}

/// Macro names to ask the MTA for, per stage (`smfi_setsymlist`).
public struct MacroRequest: Sendable, Equatable {
    public var byStage: [MilterStage: [String]]

    public init(_ byStage: [MilterStage: [String]]) {
        self.byStage = byStage
    }

    public subscript(stage: MilterStage) -> [String] { byStage[stage] ?? [] }
}

/// Macro values the MTA sent, copied out of libmilter at the callback.
///
/// A short list searched in order rather than a dictionary: a stage asks for
/// at most a handful of macros, and one of these is made at every callback,
/// where hashing each name twice (to store, to look up) cost more than the scan.
public struct Macros: Sendable, Equatable {
    private var pairs: [(name: String, value: String)]

    public init(_ values: [String: String] = [:]) {
        pairs = values.map { (name: $0.key, value: $0.value) }
    }

    init(capacity: Int) {
        pairs = []
        pairs.reserveCapacity(capacity)
    }

    /// The values by name.
    public var values: [String: String] {
        Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Sets a value read from the MTA; a name set twice keeps the last value.
    mutating func set(_ name: String, _ value: String) {
        if let index = pairs.firstIndex(where: { $0.name == name }) {
            pairs[index].value = value
        } else {
            pairs.append((name: name, value: value))
        }
    }

    /// The value, or nil when the MTA did not send it or sent it empty.
    public subscript(name: String) -> String? {
        guard let value = pairs.first(where: { $0.name == name })?.value, !value.isEmpty else { return nil }
        return value
    }

    public static func == (lhs: Macros, rhs: Macros) -> Bool {
        lhs.values == rhs.values
    }
}

/// The SMTP client as the MTA saw it at connect.
public struct ConnectInfo: Sendable, Equatable {
    /// The client's host name (or `[address]` when it has none).
    public var hostname: String
    /// The client's address from the connect callback's `sockaddr`; nil for an
    /// unknown or absent family (half-open scans, local submissions).
    public var address: String?
    public var port: UInt16?
    public var macros: Macros
    /// Whether the MTA took the milter's macro lists at negotiation; when not,
    /// it sends only what its own settings name (Postfix's `milter_*_macros`,
    /// Sendmail's `Milter.macros.*`).
    public var macroListTaken: Bool

    public init(hostname: String, address: String?, port: UInt16?, macros: Macros, macroListTaken: Bool = true) {
        self.hostname = hostname
        self.address = address
        self.port = port
        self.macros = macros
        self.macroListTaken = macroListTaken
    }
}

/// MAIL FROM or RCPT TO: the address and its ESMTP parameters.
public struct EnvelopeAddress: Sendable, Equatable {
    public var address: String
    public var parameters: [String]
    public var macros: Macros

    public init(address: String, parameters: [String] = [], macros: Macros) {
        self.address = address
        self.parameters = parameters
        self.macros = macros
    }
}

/// An SMTP reply for a reject or tempfail, made safe to hand to the MTA:
/// control characters become `?`, `%` is doubled (libmilter's rule), and
/// there are 1...32 lines.
public struct SMTPReply: Sendable, Equatable {
    public let code: String
    public let enhancedCode: String
    public let lines: [String]

    public init(code: String, enhancedCode: String, lines: [String]) {
        precondition(code.count == 3 && (code.first == "4" || code.first == "5"), "SMTP reply code must be 4xx or 5xx")
        self.code = code
        self.enhancedCode = enhancedCode
        let cleaned = lines.prefix(SMTPReply.maxLines).map(SMTPReply.sanitized)
        self.lines = cleaned.isEmpty ? [""] : cleaned
    }

    public static let maxLines = 32

    static func sanitized(_ line: String) -> String {
        // The usual reply needs nothing changed: no rebuilding it scalar by scalar.
        if line.utf8.count <= 900, !line.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "%") }) {
            return line
        }
        var result = ""
        for scalar in line.unicodeScalars.prefix(900) {
            switch scalar {
            case "%": result += "%%"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += "?"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// A callback's answer to the MTA.
public enum MilterResponse: Sendable, Equatable {
    case `continue`
    case accept
    case reject(SMTPReply?)
    case tempfail(SMTPReply?)
    case discard
}

/// A header to add at end of message.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
