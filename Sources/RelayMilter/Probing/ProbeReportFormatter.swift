import Foundation
import RelayProbe
import RelayProbeNIO

/// `relay-milter probe` output: a table like the public testers print, or JSON.
public enum ProbeReportFormatter {
    public static func text(_ report: ProbeReport, target: ProbeTarget) -> String {
        var out = "Relay test of \(target)"
        if !report.banner.isEmpty { out += " (banner: \(UntrustedText.forTerminal(report.banner)))" }
        out += "\n"
        let tested = report.outcomes.filter { $0.mailReply != nil }
        if !tested.isEmpty {
            let width = max(4, report.outcomes.map(\.test.name.count).max() ?? 0)
            out += "  #  " + "test".padding(width) + "  MAIL  RCPT  DATA  commands\n"
            for (index, outcome) in report.outcomes.enumerated() where outcome.mailReply != nil {
                let codes = [outcome.mailReply, outcome.rcptReply, outcome.dataReply].map { $0.map(String.init) ?? "-" }
                out += String(index + 1).leftPadding(3) + "  " + outcome.test.name.padding(width)
                out += "  " + codes.map { $0.padding(4) }.joined(separator: "  ")
                out += "  MAIL FROM:\(outcome.test.mailFrom) RCPT TO:\(outcome.test.rcptTo)\n"
            }
        }
        out += "Verdict: \(report.verdict.rawValue) (\(UntrustedText.forTerminal(report.detail)))\n"
        return out
    }

    struct JSONReport: Encodable {
        struct Test: Encodable {
            let name: String
            let mail_from: String
            let rcpt_to: String
            let mail: Int?
            let rcpt: Int?
            let data: Int?
        }
        let target: String
        let verdict: String
        let detail: String
        let banner: String
        let hostname: String?
        let accepted: [String]
        let tests: [Test]
    }

    public static func json(_ report: ProbeReport, target: ProbeTarget) -> String {
        let value = JSONReport(
            target: target.description, verdict: report.verdict.rawValue, detail: report.detail, banner: report.banner,
            hostname: report.hostname, accepted: report.acceptedTests,
            tests: report.outcomes.map {
                .init(name: $0.test.name, mail_from: $0.test.mailFrom, rcpt_to: $0.test.rcptTo,
                      mail: $0.mailReply, rcpt: $0.rcptReply, data: $0.dataReply)
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
