import re
import subprocess


def nmap_open_relay(port, source="127.0.0.2", target="127.0.0.1", domain=None):
    """nmap's smtp-open-relay verdict on target:port, tested from `source`
    (on lo): the line it prints, e.g. "Server is an open relay (16/16 tests)".
    `domain` is the remote domain its tests relay to (nmap.scanme.org unless given)."""
    args = ["--script-args", f"smtp-open-relay.domain={domain}"] if domain else []
    result = subprocess.run(
        ["nmap", "-n", "-Pn", "-sV", "--version-light", "-p", str(port), "-S", source, "-e", "lo",
         "--script", "smtp-open-relay", *args, target],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"smtp-open-relay: (.*)", result.stdout)
    assert match, result.stdout
    return match.group(1)
