import RelayPolicy
import Testing
@testable import RelayMilter

/// Text from clients and remote servers, on its way to a terminal, a CSV
/// file or a header someone else parses.
struct HostileTextTests {
    @Test(arguments: [
        ("mx.example ESMTP Postfix (Debian/GNU)", "mx.example ESMTP Postfix (Debian/GNU)"),
        ("\u{1B}]2;owned\u{07}\u{1B}[31mred", "\\x1b]2;owned\\x07\\x1b[31mred"),
        ("line\r\nbreak\u{7F}", "line\\x0d\\x0abreak\\x7f"),
        ("c1 \u{9B}31m", "c1 \\x9b31m"),
        ("admin\u{202E}gnp.exe", "admin\\u{202e}gnp.exe"),
        ("zero\u{200B}width", "zero\\u{200b}width"),
        ("Grüße, 東京", "Grüße, 東京"),
    ])
    func terminalSeesNoControls(raw: String, shown: String) {
        #expect(UntrustedText.forTerminal(raw) == shown)
    }

    @Test(arguments: [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
                      ("220 mx ESMTP", "220 mx ESMTP"), ("\u{1B}=x", "\\x1b=x")])
    func csvCellIsNeverAFormula(raw: String, cell: String) {
        #expect(UntrustedText.forCSV(raw) == cell)
    }

    @Test(arguments: [
        ("<victim@elsewhere.example>", "rcpt=<victim@elsewhere.example>"),
        ("<y%z@example.test>", "rcpt=<y%z@example.test>"),
        ("<postmaster>", "rcpt=<postmaster>"),
        // Each of these could forge fields, or only the domain is plain.
        ("<\"x; reason=trusted\"@example.org>", "rcpt_domain=example.org"),
        ("<\"a\\r\\nX-Spam: no\"@example.org>", "rcpt_domain=example.org"),
        ("<a@b@example.org>", "rcpt_domain=example.org"),
        ("<@hop.example:user@example.org>", "rcpt_domain=example.org"),
        ("<a b;c>", "rcpt=unparsable"),
    ])
    func tagHeaderRecipientIsBuiltFromPlainParts(recipient: String, field: String) {
        #expect(RecipientOutcome.recipientField(recipient) == field)
    }
}
