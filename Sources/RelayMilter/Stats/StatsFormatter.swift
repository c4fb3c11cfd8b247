import RelayPolicy

/// `relay-milter stats` as text: totals, rates, a sparkline of refusals per hour, top lists.
public enum StatsFormatter {
    static let bars = Array("▁▂▃▄▅▆▇█")

    public static func sparkline(_ values: [Int]) -> String {
        guard let top = values.max(), top > 0 else { return String(repeating: bars[0], count: values.count) }
        return String(values.map { bars[min(bars.count - 1, $0 * (bars.count - 1) / top)] })
    }

    public static func text(_ report: StatsReport) -> String {
        var out = "relay-milter statistics for the last \(duration(report.sinceSeconds)) (up \(duration(report.uptimeSeconds)))\n\n"
        // What the MTA did itself (a recipient it refused) is counted, but it is no decision of ours.
        let observed = report.window.filter { ReasonCode(rawValue: $0.reason)?.isObservation == true }
        let decided = report.window.filter { ReasonCode(rawValue: $0.reason)?.isObservation != true }
        out += "decisions by action and reason:\n"
        if decided.isEmpty { out += "  (none)\n" }
        for count in decided {
            out += "  " + count.action.padding(9) + count.reason.padding(28) + String(count.count).leftPadding(8) + "\n"
        }
        if !observed.isEmpty {
            out += "observed, not decided (the MTA refused these recipients itself):\n"
            for count in observed {
                out += "  " + "".padding(9) + count.reason.padding(28) + String(count.count).leftPadding(8) + "\n"
            }
        }
        let r = report.ratesPerMinute
        out += "\nper minute: last minute \(format(r.lastMinute)), last hour \(format(r.lastHour)), last day \(format(r.lastDay))\n"
        out += "refused per hour (oldest first, max \(report.refusedPerHour.max() ?? 0)): \(sparkline(report.refusedPerHour))\n"
        if report.topListsWithheld == true {
            out += "\ntop refused clients, networks and destinations: not served ([metrics] stats_detail = false)\n"
        }
        for (title, list) in [("refused clients", report.topClients), ("refused networks", report.topNetworks),
                              ("attempted relay destinations", report.topDomains)] where report.topListsWithheld != true {
            out += "\ntop \(title) (since start):\n"
            if list.isEmpty { out += "  (none)\n" }
            for entry in list {
                out += "  " + entry.key.padding(40) + String(entry.count).leftPadding(8)
                out += entry.overcount > 0 ? "  (±\(entry.overcount))\n" : "\n"
            }
        }
        out += "\nverdict cache: \(tally(report.cacheByVerdict, of: "host(s)"))"
        if let registered = report.registeredTests {
            out += "\nregistered tests started in the window: \(tally(registered, of: "test(s)"))"
        }
        if let trap = report.trap {
            out += "\n\ntrap: \(trap.attempts) relay attempt(s) taken in the window\n"
            out += "trapped per hour (oldest first, max \(trap.perHour.max() ?? 0)): \(sparkline(trap.perHour))\n"
            for (title, list) in [("trapped clients", trap.topClients), ("trapped target domains", trap.topDomains)] where report.topListsWithheld != true {
                out += "\ntop \(title):\n"
                if list.isEmpty { out += "  (none)\n" }
                for entry in list { out += "  " + entry.key.padding(40) + String(entry.count).leftPadding(8) + "\n" }
            }
        }
        return out + "\n"
    }

    /// "3 host(s) (closed 1, open 2)": the total, then each key's count.
    static func tally(_ counts: [String: Int], of things: String) -> String {
        let total = counts.values.reduce(0, +)
        guard total > 0 else { return "0 \(things)" }
        return "\(total) \(things) (" + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func duration(_ seconds: Int) -> String {
        seconds >= 86400 && seconds % 86400 == 0 ? "\(seconds / 86400)d"
            : seconds >= 3600 && seconds % 3600 == 0 ? "\(seconds / 3600)h"
            : seconds >= 60 ? "\(seconds / 60)m" : "\(seconds)s"
    }
}
