@testable import RelayMilter
@testable import RelayConfig
import Testing

struct ManualTextTests {
    /// The man page names every section and key that check-config prints, so
    /// a new key cannot go undocumented there.
    @Test func namesEveryKeyCheckConfigPrints() {
        let rendered = ConfigRenderer.render(RelayMilterConfig.defaults)
        var section = ""
        var sectionLine = ""
        var missing: [String] = []
        for line in rendered.split(separator: "\n") where !line.hasPrefix("#") {
            if line.hasPrefix("[") {
                section = String(line)
                sectionLine = ManualText.discussion.split(separator: "\n").first { $0.contains(section) }.map(String.init) ?? ""
                if sectionLine.isEmpty { missing.append(section) }
                continue
            }
            guard let key = line.split(separator: " = ").first else { continue }
            // The section's entry, with its continuation lines.
            let entry = ManualText.discussion.components(separatedBy: section).dropFirst().first?
                .components(separatedBy: "\n  [").first?.components(separatedBy: "\n\n").first ?? ""
            if !entry.contains(String(key)) { missing.append("\(section) \(key)") }
        }
        #expect(missing.isEmpty, "not in ManualText: \(missing)")
        #expect(rendered.contains("[reply]") && rendered.contains("[cache.ttl]"))
    }
}
