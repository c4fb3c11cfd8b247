"""A private OpenSMTPD on loopback with Debian's default smtpd.conf. It
comes unpacked from Debian's package (Scripts/install-probe-targets: it
conflicts with Postfix), and it has fixed paths (/var/spool/smtpd, the
control socket under /run, the /var/lib/opensmtpd/empty chroot) that it gets
as private tmpfs in its own mount namespace."""
import os
from pathlib import Path

from .isolation import start_isolated
from .ports import free_port, wait_for_port
from .unpacked import ROOT

BINARY = ROOT / "usr/sbin/smtpd"


def available():
    return BINARY.exists()


class OpenSMTPDInstance:
    def __init__(self, root: Path, *, port=None, relay_from="local", hostname="mx.example.test"):
        self.root = Path(root)
        self.port = port or free_port()
        # Debian's smtpd.conf relays `from local`; `any` makes it an open relay.
        self.relay_from = relay_from
        self.hostname = hostname
        self.proc = None

    def config(self):
        """Debian's /etc/smtpd.conf, but for the port, its aliases file and whom it relays for."""
        default = (ROOT / "etc/smtpd.conf").read_text()
        lines = []
        for line in default.splitlines():
            if line.startswith("table aliases file:"):
                line = f"table aliases file:{self.root / 'aliases'}"
            elif line == "listen on localhost":
                line = f"listen on localhost port {self.port}"
            elif line == 'match from local for any action "relay"':
                line = f'match from {self.relay_from} for any action "relay"'
            lines.append(line)
        text = "\n".join(lines) + "\n"
        assert f"port {self.port}" in text and f"match from {self.relay_from} for any" in text, \
            "Debian's smtpd.conf changed: update OpenSMTPDInstance.config"
        return text

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        (self.root / "aliases").write_text("postmaster: root\n")
        conf = self.root / "smtpd.conf"
        conf.write_text(self.config())
        # -d: in the foreground, logging to stderr (so to our log file).
        script = ["sh", "-c", 'mkdir -p /var/lib/opensmtpd/empty && exec "$@"', "sh", BINARY, "-d", "-f", conf]
        self.proc = start_isolated(script, root=self.root, hostname=self.hostname,
                                   private_dirs=("/var/spool", "/var/lib", "/run"), log=self.root / "log")
        if not wait_for_port(self.port, timeout=20):
            self.stop()
            raise RuntimeError(f"opensmtpd did not start:\n{self.log()}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def log(self):
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""
