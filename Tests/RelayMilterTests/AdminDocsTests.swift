import Foundation
import RelayPolicy
import Testing

/// What README.md promises the admin, held to the code it describes.
struct AdminDocsTests {
    /// Every reason a log line, a metric or `stats` can show has its row under "Decisions and reasons".
    @Test func everyReasonHasItsRowInTheReasonsTable() throws {
        let readme = try String(contentsOfFile: "README.md", encoding: .utf8)
        let table = readme.components(separatedBy: "## Decisions and reasons").dropFirst().first?
            .components(separatedBy: "\n## ").first ?? ""
        let missing = ReasonCode.allCases.filter { !table.contains("| `\($0.rawValue)` |") }
        #expect(missing.isEmpty, "not in README's reasons table: \(missing.map(\.rawValue))")
    }
}
