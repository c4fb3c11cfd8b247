import Testing
@testable import RelayMilter
import RelayPolicy

struct PlaceholdersTests {
    @Test func fillsKnownNamesAndLeavesTheRest() {
        let values = ["a": "1", "b": "two"]
        #expect(Placeholders.fill("{a}-{b}-{c}", { values[String($0)] }) == "1-two-{c}")
        #expect(Placeholders.fill("no braces", { _ in "x" }) == "no braces")
        #expect(Placeholders.fill("open { only", { _ in "x" }) == "open { only")
        #expect(Placeholders.fill("{a}{a}", { values[String($0)] }) == "11")
        #expect(Placeholders.fill("é{a}ü", { values[String($0)] }) == "é1ü")
    }

    /// A recipient is the client's text: placeholders inside it stay literal.
    @Test func neverExpandsWhatTheClientSent() {
        let text = ReplyTemplate.render("no relaying to <{recipient}> ({reason})", recipient: "<{reason}{client}@x.example>",
                                        client: IPAddress("203.0.113.7"), reason: .denied)
        #expect(text == "no relaying to <{reason}{client}@x.example> (relay.denied)")
    }
}
