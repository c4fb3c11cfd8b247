"""The processes a benchmark runs against: the no-op C milter, relay-milter
with a chosen config, and the milter-load driver."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Scripts"))
import mailharness.milterload  # noqa: E402
import mailharness.noopmilter  # noqa: E402
from mailharness.ports import milter_socket_spec, wait_until  # noqa: E402
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

    @property
    def loopback_targets(self):
        """Compiled by Scripts/bench next to the no-op milter."""
        return self.noop_milter.parent / "loopback-targets"


def postfix_spec(spec: str):
    """The same socket as Postfix's smtpd_milters writes it."""
    if spec.startswith("inet:"):
        port, host = spec[len("inet:"):].split("@")
        return f"inet:{host}:{port}"
    return spec


class NoopMilter(mailharness.noopmilter.NoopMilter):
    """The no-op C milter of this build (`mailharness.noopmilter`)."""

    def __init__(self, build: Build, root: Path, transport: str, fewest_steps: bool = False):
        super().__init__(build.noop_milter, root, transport, fewest_steps=fewest_steps)


def relay_milter(build: Build, root: Path, transport: str, sections: str = "", binary: Path = None):
    """relay-milter with the test policy (local domain example.test, trusted
    127.0.0.1) and otherwise the shipped defaults, unless `sections` says more.
    `binary` runs another build than `build`'s."""
    os.environ["RELAY_MILTER_BIN"] = str(build.relay_milter)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # A unix socket as deployed: mode 0660 (the default), group postfix.
    milter_section = '[milter]\nsocket_group = "postfix"\n' if transport == "unix" else ""
    return RelayMilter(root, milter_section + config_text(sections=sections),
                       socket=milter_socket_spec(root, transport), executable=binary)


def load(build: Build, socket: str, seconds: float, warmup: float, sessions: int, **options):
    """One run of this build's milter-load (`mailharness.milterload.run`); returns its JSON report."""
    return mailharness.milterload.run(build.milter_load, socket, seconds, warmup, sessions, **options)


def stage(report, name):
    """(p50, p99) in microseconds of one stage of a milter-load report."""
    for entry in report["stages"]:
        if entry["stage"] == name:
            return entry["p50"], entry["p99"]
    return None


def stat_cpu_seconds(text):
    """User plus system CPU time in the text of a /proc .../stat file."""
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, from /proc/PID/stat."""
    return stat_cpu_seconds(open(f"/proc/{pid}/stat").read())


def threads_cpu_seconds(pid, name_prefix):
    """User plus system CPU time used so far by those threads of a process
    whose name starts with `name_prefix`, from /proc/PID/task/TID/stat."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        if text[text.index("(") + 1:text.rindex(")")].startswith(name_prefix):
            total += stat_cpu_seconds(text)
    return total


def process_status(pid, field):
    """A field of /proc/PID/status, e.g. VmRSS (kB) or Threads."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


__all__ = ["Build", "NoopMilter", "relay_milter", "load", "stage", "process_status", "postfix_spec", "wait_until", "REPO"]
