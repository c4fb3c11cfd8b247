import Foundation
import RelayPolicy
import Testing

/// What the admin's documents promise, held to the code they describe.
struct AdminDocsTests {
    /// Every reason a log line, a metric or `stats` can show has its row in the reference's "Decisions and reasons".
    @Test func everyReasonHasItsRowInTheReasonsTable() throws {
        let reference = try String(contentsOfFile: "docs/REFERENCE.md", encoding: .utf8)
        let table = reference.components(separatedBy: "## Decisions and reasons").dropFirst().first?
            .components(separatedBy: "\n## ").first ?? ""
        let missing = ReasonCode.allCases.filter { !table.contains("| `\($0.rawValue)` |") }
        #expect(missing.isEmpty, "not in docs/REFERENCE.md's reasons table: \(missing.map(\.rawValue))")
    }
}
