"""The processes a benchmark runs against: the no-op C milter, relay-milter
with a chosen config, and the milter-load driver."""
import grp
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Scripts"))
from mailharness.ports import free_port, wait_until  # noqa: E402
from mailharness.relaymilter import RelayMilter, config_text  # noqa: E402


class Build:
    """Where the binaries under test are: .build/release, or .build/debug for --smoke."""

    def __init__(self, directory: Path, noop_milter: Path):
        self.directory = Path(directory)
        self.noop_milter = Path(noop_milter)

    @property
    def relay_milter(self):
        return self.directory / "relay-milter"

    @property
    def milter_load(self):
        return self.directory / "milter-load"

    @property
    def verdict_cache_bench(self):
        return self.directory / "verdict-cache-bench"

    @property
    def log_line_bench(self):
        return self.directory / "log-line-bench"


def socket_spec(root: Path, transport: str):
    """A libmilter socket spec on loopback or in `root`."""
    if transport == "unix":
        return f"unix:{root / 'milter.sock'}"
    return f"inet:{free_port()}@127.0.0.1"


def postfix_spec(spec: str):
    """The same socket as Postfix's smtpd_milters writes it."""
    if spec.startswith("inet:"):
        port, host = spec[len("inet:"):].split("@")
        return f"inet:{host}:{port}"
    return spec


class NoopMilter:
    """Benchmarks/NoopMilter/noop-milter.c: libmilter's cost and nothing else.
    `fewest_steps` has the MTA skip every step a relay-policy milter can do
    without: the least any such milter must receive."""

    def __init__(self, build: Build, root: Path, transport: str, fewest_steps: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = socket_spec(self.root, transport)
        self.binary = build.noop_milter
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
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def relay_milter(build: Build, root: Path, transport: str, sections: str = "", binary: Path = None):
    """relay-milter with the test policy (local domain example.test, trusted
    127.0.0.1) and otherwise the shipped defaults, unless `sections` says more.
    `binary` runs another build than `build`'s."""
    os.environ["RELAY_MILTER_BIN"] = str(build.relay_milter)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # A unix socket as deployed: mode 0660 (the default), group postfix.
    milter_section = '[milter]\nsocket_group = "postfix"\n' if transport == "unix" else ""
    return RelayMilter(root, milter_section + config_text(sections=sections), socket=socket_spec(root, transport),
                       executable=binary)


def load(build: Build, socket: str, seconds: float, warmup: float, sessions: int, recipients: int = 1, seed: int = 1,
         clients: int = 10000, rate: float = 0):
    """One milter-load run; returns its JSON report. `rate` paces it (transactions/s)."""
    result = subprocess.run([str(build.milter_load), "--socket", socket, "--duration", str(seconds), "--warmup", str(warmup),
                             "--sessions", str(sessions), "--recipients", str(recipients), "--seed", str(seed),
                             "--clients", str(clients), "--rate", str(rate), "--json"],
                            capture_output=True, text=True, timeout=seconds + warmup + 120)
    if result.returncode != 0:
        raise RuntimeError(f"milter-load against {socket} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout)


def stage(report, name):
    """(p50, p99) in microseconds of one stage of a milter-load report."""
    for entry in report["stages"]:
        if entry["stage"] == name:
            return entry["p50"], entry["p99"]
    return None


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_status(pid, field):
    """A field of /proc/PID/status, e.g. VmRSS (kB) or Threads."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


__all__ = ["Build", "NoopMilter", "relay_milter", "load", "stage", "process_status", "postfix_spec", "wait_until", "REPO"]
