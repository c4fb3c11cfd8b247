import socket
import time
from pathlib import Path


def family(host):
    """AF_INET6 for an IPv6 address such as ::1, AF_INET otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    with socket.socket(family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def milter_socket_spec(root: Path, transport: str):
    """A libmilter socket spec: a unix socket in `root`, or ("inet") a free loopback port."""
    if transport == "unix":
        return f"unix:{Path(root) / 'milter.sock'}"
    return f"inet:{free_port()}@127.0.0.1"


def wait_for_port(port, host="127.0.0.1", timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_until(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
