"""One SMTP transaction with the RCPT TO argument sent exactly as given,
for relay tricks that a client library would "fix" (smtplib's quoteaddr)."""
import smtplib


def attempt(port, rcpt, *, sender="<sender@elsewhere.example>", source="127.0.0.1", server="127.0.0.1"):
    """Sends MAIL FROM / RCPT TO:`rcpt` and, if the recipient is accepted, a
    short message. Returns (RCPT reply code, RCPT reply text, DATA code or None).
    Declares SMTPUTF8 when the address is not ASCII, as a real client must."""
    client = smtplib.SMTP(server, port, source_address=(source, 0), timeout=20)
    try:
        client.ehlo("client.example")
        options = " SMTPUTF8" if not rcpt.isascii() else ""
        if options:
            client.command_encoding = "utf-8"
        code, text = client.docmd(f"MAIL FROM:{sender}{options}")
        if code != 250:
            return code, text.decode(errors="replace"), None
        code, text = client.docmd(f"RCPT TO:{rcpt}")
        data_code = None
        if code == 250:
            data_code, _ = client.data(b"Subject: relay trick\r\n\r\nA relay test.\r\n")
        return code, text.decode(errors="replace"), data_code
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()
