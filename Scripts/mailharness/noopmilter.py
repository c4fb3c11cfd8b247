"""Benchmarks/NoopMilter/noop-milter.c as a process: libmilter's cost and
nothing else, the baseline of the benchmarks (Scripts/bench builds it into
.build/bench)."""
import grp
import os
import socket
import subprocess
import time
from pathlib import Path

from .ports import milter_socket_spec


class NoopMilter:
    """The no-op C milter on a unix socket in `root` or on loopback.
    `fewest_steps` has the MTA skip every step a relay-policy milter can do
    without: the least any such milter must receive."""

    def __init__(self, binary: Path, root: Path, transport: str, fewest_steps: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = milter_socket_spec(self.root, transport)
        self.binary = Path(binary)
        self.options = ["--fewest-steps"] if fewest_steps else []
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(self.binary), *self.options, self.socket],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"noop-milter did not start: {line}{self.proc.stdout.read()}")
        if self.socket.startswith("unix:"):
            # As relay-milter is deployed: mode 0660, group postfix, so smtpd can connect.
            path = self.socket[len("unix:"):]
            os.chown(path, -1, grp.getgrnam("postfix").gr_gid)
            os.chmod(path, 0o660)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            # libmilter looks for a stop only between waits of up to 5 s for a
            # connection (MI_CHK_TIME): a throw-away connection ends the wait,
            # as relay-milter's ListenerNudge does for itself. Again until it
            # exits, in case a connection came before the signal was seen.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                self._nudge()
                try:
                    self.proc.wait(timeout=0.1)
                    return
                except subprocess.TimeoutExpired:
                    pass
            self.proc.kill()
            self.proc.wait()

    def _nudge(self):
        if self.socket.startswith("unix:"):
            family, address = socket.AF_UNIX, self.socket[len("unix:"):]
        else:
            port, host = self.socket[len("inet:"):].split("@")
            family, address = socket.AF_INET, (host, int(port))
        try:
            with socket.socket(family, socket.SOCK_STREAM) as connection:
                connection.settimeout(1)
                connection.connect(address)
        except OSError:
            pass  # already closed: it is on its way out
