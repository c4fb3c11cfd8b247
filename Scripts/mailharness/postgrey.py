"""Debian's postgrey, the greylisting policy server, on loopback for a test
Postfix (check_policy_service inet:127.0.0.1:port): its own database
directory, in the foreground, as the postgrey user its package made."""
import shutil
import subprocess
from pathlib import Path

from .ports import free_port, wait_for_port


class PostgreyInstance:
    def __init__(self, root: Path, *, delay=300):
        self.root = Path(root)
        self.port = free_port()
        # Seconds a new (client, sender, recipient) is deferred: 300 by default.
        self.delay = delay
        self.proc = None

    @property
    def policy_service(self):
        return f"check_policy_service inet:127.0.0.1:{self.port}"

    def start(self):
        db = self.root / "db"
        db.mkdir(parents=True)
        shutil.chown(db, user="postgrey", group="postgrey")
        with open(self.root / "log", "ab") as log:
            self.proc = subprocess.Popen(["postgrey", f"--inet=127.0.0.1:{self.port}", f"--dbdir={db}",
                                          f"--delay={self.delay}", "--hostname=mx.example.test"],
                                         stdout=log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, timeout=20):
            self.stop()
            raise RuntimeError(f"postgrey did not start: {(self.root / 'log').read_text()}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
