"""SMTP load whose every message is accounted for: each message has its own id
(in the recipient and the Subject), one SMTP session per message as
smtp-source -s sends them, and the client's view of each (accepted, or the
reply that refused it) is kept, so a test can reconcile it exactly against
what was delivered."""
import smtplib
import threading
from dataclasses import dataclass


@dataclass
class Outcome:
    ident: str
    kind: str          # "local" or "relay"
    stage: str         # where it ended: "connect", "mail", "rcpt", "data", "disconnected" or "accepted"
    code: int          # the SMTP reply code there (0: the connection failed)

    @property
    def accepted(self):
        return self.stage == "accepted"


def recipient(ident, kind):
    return f"{ident}@example.test" if kind == "local" else f"{ident}@elsewhere.example"


def send_one(port, ident, kind, source):
    try:
        client = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30)
    except smtplib.SMTPConnectError as error:
        return Outcome(ident, kind, "connect", error.smtp_code)
    except (OSError, smtplib.SMTPException):
        return Outcome(ident, kind, "connect", 0)
    try:
        client.ehlo("load.example")
        for stage, command in (("mail", "MAIL FROM:<load@elsewhere.example>"), ("rcpt", f"RCPT TO:<{recipient(ident, kind)}>")):
            code, _ = client.docmd(command)
            if code != 250:
                return Outcome(ident, kind, stage, code)
        code, _ = client.docmd("DATA")
        if code != 354:
            return Outcome(ident, kind, "data", code)
        client.send(f"Subject: {ident}\r\nMessage-ID: <{ident}@load.example>\r\n\r\nload test\r\n.\r\n".encode())
        code, _ = client.getreply()
        return Outcome(ident, kind, "accepted" if code == 250 else "data", code)
    except (OSError, smtplib.SMTPException):
        return Outcome(ident, kind, "disconnected", 0)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


class Load:
    """`count` messages over `sessions` concurrent clients; every `relay_every`-th
    one is a relay attempt. Runs in the background; `outcomes` fills as it goes.
    `stop_after(n)` ends an open-ended run n messages from now, so a test can
    be sure some mail is sent after an event however slow the event was."""

    def __init__(self, port, count, sessions=4, source="127.0.0.2", relay_every=5, prefix="m"):
        self.port = port
        self.count = count
        self.sessions = sessions
        self.source = source
        self.relay_every = relay_every
        self.prefix = prefix
        self.outcomes = []
        self._lock = threading.Lock()
        self._next = 0
        self._threads = []

    def _take(self):
        with self._lock:
            if self._next >= self.count:
                return None
            self._next += 1
            return self._next - 1

    def _work(self):
        while (n := self._take()) is not None:
            kind = "relay" if n % self.relay_every == self.relay_every - 1 else "local"
            outcome = send_one(self.port, f"{self.prefix}{n:05d}", kind, self.source)
            with self._lock:
                self.outcomes.append(outcome)

    def start(self):
        self._threads = [threading.Thread(target=self._work) for _ in range(self.sessions)]
        for thread in self._threads:
            thread.start()
        return self

    def issued_count(self):
        """How many messages have been started so far (ids below this are taken)."""
        with self._lock:
            return self._next

    def stop_after(self, more):
        """Send `more` messages from now on, then stop; returns the first of their indexes."""
        with self._lock:
            self.count = min(self.count, self._next + more)
            return self._next

    def done_count(self):
        with self._lock:
            return len(self.outcomes)

    def wait(self, timeout=300):
        for thread in self._threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "load did not finish"
        return self.outcomes


def delivered_ids(postfix):
    """The Subject of every message in the local mailbox, one entry per copy."""
    ids = []
    for text in postfix.delivered():
        for line in text.splitlines():
            if line.startswith("Subject: "):
                ids.append(line[len("Subject: "):].strip())
                break
    return ids


def relayed_ids(sink):
    """The ids of relay attempts that reached the smtp-sink standing for the Internet."""
    return [rcpt.strip("<>").split("@")[0] for rcpt in sink.recipients()]
