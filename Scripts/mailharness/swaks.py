import subprocess


def swaks(port, *, to, sender="sender@elsewhere.example", source="127.0.0.1", server="127.0.0.1",
          header=None, extra=()):
    """Sends one message with swaks; returns (exit code, transcript). An IPv6
    server or source (::1) needs Debian's libio-socket-inet6-perl."""
    args = ["swaks", "--server", server, "--port", str(port), "--local-interface", source,
            "--to", to, "--from", sender, "--helo", "client.example", "--timeout", "20"]
    if header:
        args += ["--header", header]
    result = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr
