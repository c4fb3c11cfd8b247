"""Catches syslog messages for programs that log nowhere else (Sendmail).

Sendmail writes its log only through syslog(3), to /dev/log. Where no syslog
daemon listens there (CI machines, containers), this binds /dev/log itself,
in a thread of the test process, keeps what arrives in memory and removes
the socket at exit. Where a syslog daemon already owns /dev/log it changes
nothing, and the log stays in the system's log."""
import atexit
import os
import socket
import threading

PATH = "/dev/log"


class LogSocket:
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        self.owned = False
        if os.path.exists(PATH):
            if not stale(PATH):
                return
            os.unlink(PATH)  # left behind by a run that was killed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(PATH)
        os.chmod(PATH, 0o666)
        self.owned = True
        atexit.register(self.close)
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace").rstrip("\n"))

    def lines_tagged(self, tag):
        """The messages a program sent with this syslog tag (ident)."""
        marker = f" {tag}["
        with self.lock:
            return [line for line in self.lines if marker in line]

    def close(self):
        if self.owned:
            self.sock.close()
            try:
                os.unlink(PATH)
            except FileNotFoundError:
                pass
            self.owned = False


def stale(path):
    """True when nobody listens on the socket at `path` any more."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        probe.close()


_shared = None


def shared():
    """The one catcher of this process, started on first use."""
    global _shared
    if _shared is None:
        _shared = LogSocket()
    return _shared
