"""Runs an MTA daemon that has no setting for some system path in private
namespaces: its own host name (UTS), and a mount namespace where
/etc/resolv.conf names a loopback server that is not there (so any DNS lookup
it makes, such as a client's reverse lookup, fails at once and never leaves
loopback) and where fixed directories it insists on are private tmpfs."""
import subprocess
from pathlib import Path

NO_DNS = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def start_isolated(command, *, root: Path, hostname, private_dirs=(), log: Path):
    """Starts `command` in the foreground of its namespaces (unshare does not
    fork: the Popen's pid is the daemon's), its output appended to `log`."""
    resolv = root / "resolv.conf"
    resolv.write_text(NO_DNS)
    setup = [f"hostname {hostname}", f'mount --bind "{resolv}" /etc/resolv.conf']
    setup += [f"mount -t tmpfs -o mode=0755 tmpfs {d}" for d in private_dirs]
    script = " && ".join(setup) + ' && exec "$@"'
    with open(log, "ab") as out:
        return subprocess.Popen(["unshare", "--uts", "--mount", "--propagation", "private", "--",
                                 "sh", "-c", script, "sh", *map(str, command)],
                                stdout=out, stderr=subprocess.STDOUT)
