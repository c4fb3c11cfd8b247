"""relay-milter itself, run from the build directory as a child process."""
import os
import re
import signal as signals
import subprocess
from pathlib import Path

from .ports import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


def binary():
    """The relay-milter under test: RELAY_MILTER_BIN (Scripts/test sets the
    release build's, Scripts/sanitizers a sanitizer build's), else the debug
    build of `swift build`."""
    return os.environ.get("RELAY_MILTER_BIN", str(REPO / ".build" / "debug" / "relay-milter"))


def build_tool(name):
    """Another product of the same build (milter-load, ...): beside the binary under test."""
    return Path(binary()).parent / name


def cached_verdicts(config_path):
    """The verdict cache as `relay-milter cache list --json` prints it: one dict per host."""
    import json
    result = subprocess.run([binary(), "cache", "list", "--json", "--config", str(config_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def config_text(local_domains=("example.test",), trusted=("127.0.0.1/32", "::1/128"), mode="enforce",
                socket=None, extra_policy="", sections=""):
    lines = ["[policy]", f'mode = "{mode}"',
             "local_domains = [" + ", ".join(f'"{d}"' for d in local_domains) + "]",
             "trusted_networks = [" + ", ".join(f'"{t}"' for t in trusted) + "]", extra_policy]
    if socket:
        lines = ["[milter]", f'socket = "{socket}"', ""] + lines
    return "\n".join(lines) + "\n" + sections


class RelayMilter:
    def __init__(self, root: Path, config: str, socket=None, executable=None, open_files=None):
        self.root = Path(root)
        # A descriptor limit of its own (systemd gives a service 1024), or the test's.
        self.open_files = open_files
        # Another build than RELAY_MILTER_BIN's (benchmarks compare two).
        self.executable = executable
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "relay-milter.toml"
        self.database = self.root / "verdicts.sqlite"
        self.metrics_port = free_port()
        self.write_config(config)
        self.port = free_port()
        self.socket = socket or f"inet:{self.port}@127.0.0.1"
        self.log_path = self.root / "relay-milter.log"
        self.proc = None

    @property
    def postfix_spec(self):
        """The socket as Postfix's smtpd_milters writes it."""
        if self.socket.startswith("inet:"):
            port, host = self.socket[len("inet:"):].split("@")
            return f"inet:{host}:{port}"
        return self.socket

    def start(self, *extra_args):
        """Starts (or restarts) the daemon and waits for its `started` line."""
        offset = len(self.log())
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.executable or binary()), "run", "--config", str(self.config_path), "--socket", self.socket, *extra_args],
            stdout=self.log_file, stderr=subprocess.STDOUT, preexec_fn=self._limit_open_files if self.open_files else None,
        )
        if not wait_until(lambda: "msg=started" in self.log()[offset:] or self.proc.poll() is not None, timeout=20):
            raise RuntimeError("relay-milter did not start:\n" + self.log())
        if self.proc.poll() is not None:
            raise RuntimeError(f"relay-milter exited with {self.proc.returncode}:\n" + self.log())
        return self

    def _limit_open_files(self):
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signals.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()
        return self.proc.returncode if self.proc else None

    def write_config(self, config):
        """Writes the config file, giving this instance its own database (never the
        system's /var/lib/relay-milter) and its own metrics port, unless set,
        and leave to stay root."""
        # The tests start it as root; staying root takes this named key (the
        # switch to a service user is test_privileges.py's subject).
        service = re.search(r"(?ms)^\[service\]\n(.*?)(?=^\[|\Z)", config)
        if "run_as_root" not in config and not (service and re.search(r"(?m)^user\s*=", service.group(1))):
            if "[service]\n" in config:
                config = config.replace("[service]\n", "[service]\nrun_as_root = true\n", 1)
            else:
                config += "\n[service]\nrun_as_root = true\n"
        if "[cache]" not in config:
            config += f'\n[cache]\npath = "{self.database}"\n'
        if "[metrics]" not in config:
            config += f'\n[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
        elif "listen =" not in config:
            config = config.replace("[metrics]\n", f'[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n', 1)
        self.config_path.write_text(config)

    def metrics(self):
        """The /metrics exposition as {(name, frozenset(labels)): value}."""
        import re
        import urllib.request
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        except OSError as error:
            state = "running" if self.proc and self.proc.poll() is None else f"exited with {self.proc and self.proc.returncode}"
            raise AssertionError(f"/metrics on port {self.metrics_port}: {error}; relay-milter {state}; its log:\n"
                                 + self.log()[-3000:]) from error
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            samples[(m.group(1), labels)] = float(m.group(4))
        return samples

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def decisions(self, at_least=0, timeout=10):
        """The relay decision lines so far, after waiting (up to `timeout`) for at
        least `at_least` of them: log lines are written on a thread of their own,
        so a reply can reach the client before its line reaches the file."""
        def read():
            return [line for line in self.log().splitlines() if 'msg="relay decision"' in line]
        wait_until(lambda: len(read()) >= at_least, timeout=timeout)
        return read()

    def logged(self, *texts, timeout=10):
        """Whether every text is in the log, waiting up to `timeout` for it to
        get there (lines are written on the log writer's thread, in batches)."""
        def all_there():
            log = self.log()
            return all(text in log for text in texts)
        return wait_until(all_there, timeout=timeout)

    @property
    def address(self):
        if self.socket.startswith("inet:"):
            port, host = self.socket[len("inet:"):].split("@")
            return (host, int(port))
        return self.socket.split(":", 1)[1]
