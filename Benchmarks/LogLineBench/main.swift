import Logging
import RelayMilter

// The per-decision log line alone: nanoseconds per `relay decision` line
// through LogfmtHandler, with a session's client fields set once, and with the
// event's metadata built but not logged (what the caller's part costs). Lines
// go to the log writer and stderr: run it with `2>/dev/null`. Prints figures;
// asserts nothing.
//   .build/release/log-line-bench [lines]

let lines = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 300_000

func sessionLogger() -> Logger {
    var logger = Logger(label: "relay-milter") { label in LogfmtHandler(label: label, level: .info) }
    logger[metadataKey: "client.address"] = .string("192.0.2.25")
    logger[metadataKey: "client.name"] = .string("mail.example.net")
    logger[metadataKey: "mta.daemon"] = .string("smtpd")
    logger[metadataKey: "client.helo"] = .string("mail.example.net")
    return logger
}

/// The fields RelaySession logs for an accepted local recipient.
func decisionMetadata(_ serial: Int) -> Logger.Metadata {
    var metadata = Logger.Metadata(minimumCapacity: 10)
    metadata["mail.from"] = .string("sender\(serial & 7)@example.org")
    metadata["mail.rcpt"] = .string("rcpt\(serial & 255)@example.test")
    metadata["decision.verdict"] = .string("allow")
    metadata["decision.reason"] = .string("recipient.local")
    metadata["decision.action"] = .string("accept")
    metadata["policy.mode"] = .string("enforce")
    metadata["queue.id"] = .string("4ABCDEF123")
    return metadata
}

func nanosecondsPerLine(_ body: (Int) -> Void) -> Int {
    let clock = ContinuousClock()
    let elapsed = clock.measure {
        for serial in 0..<lines { body(serial) }
    }
    return Int(elapsed / .nanoseconds(1) / Double(lines))
}

let logger = sessionLogger()
let logged = nanosecondsPerLine { logger.info("relay decision", metadata: decisionMetadata($0)) }
let metadataOnly = nanosecondsPerLine { serial in
    let metadata = decisionMetadata(serial)
    precondition(metadata.count == 7) // used, so the optimiser cannot drop the building
}
print("log line: \(logged) ns per line, of which building the event's metadata \(metadataOnly) ns (\(lines) lines)")
