"""The verdict cache published as a DNS blocklist (issue 8, point 2): the
zone `relay-milter cache export --format rbldnsd` writes, and the one the
daemon keeps up to date ([publish]), served by a real rbldnsd on a
loopback port and asked with dig, list exactly the IPv4 hosts with an
unexpired bad verdict, and a rewrite reaches rbldnsd."""
import signal
import subprocess
import time

import pytest

from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import binary, config_text

ZONE = "bl.relay-milter.test"


def cli(config, *args):
    result = subprocess.run([binary(), *args, "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def dig(port, name, kind="A", check=True):
    """The answer's records, one per line ("" for none); None, unchecked, when nobody answered."""
    result = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1", name, kind],
                            capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        assert not check, result.stdout + result.stderr
        return None
    return result.stdout.strip()


def reversed_name(ip):
    return ".".join(reversed(ip.split("."))) + "." + ZONE


@pytest.fixture
def rbldnsd(workdir):
    zone = workdir / "zones" / "open-relays"
    zone.parent.mkdir()
    zone.parent.chmod(0o755)
    zone.write_text("$TTL 60\n")
    zone.chmod(0o644)
    port = free_port()
    # -c 1s: rbldnsd looks for a changed file every second (its default is a minute).
    proc = subprocess.Popen(["rbldnsd", "-n", "-q", "-c", "1s", "-b", f"127.0.0.1/{port}", "-w", str(zone.parent),
                             f"{ZONE}:ip4set:{zone.name}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert wait_until(lambda: proc.poll() is not None or dig(port, reversed_name("127.0.0.2"), check=False) is not None,
                      timeout=10)
    assert proc.poll() is None, proc.stdout.read()
    yield zone, port
    proc.terminate()
    proc.wait(timeout=10)


def test_the_exported_zone_lists_exactly_the_open_relays(workdir, rbldnsd):
    zone, port = rbldnsd
    config = workdir / "relay-milter.toml"
    config.write_text(config_text(sections=f'[cache]\npath = "{workdir}/verdicts.sqlite"\n'))
    config.chmod(0o644)
    cli(config, "cache", "set", "192.0.2.7", "open")
    cli(config, "cache", "set", "192.0.2.8", "closed")
    cli(config, "cache", "set", "192.0.2.9", "open", "--ttl", "1s")
    cli(config, "cache", "set", "2001:db8::7", "open")
    time.sleep(1.5)  # 192.0.2.9's verdict expires

    assert cli(config, "cache", "export", "--format", "rbldnsd", "--ttl", "15m", "--output", str(zone)) == ""
    text = zone.read_text()
    assert "$TTL 900" in text and "2001:db8" not in text, text
    assert wait_until(lambda: dig(port, reversed_name("192.0.2.7")) == "127.0.0.2", timeout=10), text
    assert "open relay (verdict open)" in dig(port, reversed_name("192.0.2.7"), "TXT")
    assert dig(port, reversed_name("192.0.2.8")) == ""   # closed
    assert dig(port, reversed_name("192.0.2.9")) == ""   # expired
    assert dig(port, reversed_name("192.0.2.10")) == ""  # never tested

    # A verdict changes; the file is rewritten in one step and rbldnsd serves the new one.
    cli(config, "cache", "set", "192.0.2.8", "open")
    time.sleep(1.1)  # rbldnsd compares modification times to the second
    cli(config, "cache", "export", "--format", "rbldnsd", "--output", str(zone))
    assert wait_until(lambda: dig(port, reversed_name("192.0.2.8")) == "127.0.0.2", timeout=15)
    assert dig(port, reversed_name("192.0.2.7")) == "127.0.0.2"
    assert not list(zone.parent.glob("*.tmp-*")), "the temporary file was left behind"


def test_the_daemon_keeps_the_zone_up_to_date(workdir, rbldnsd, start_milter):
    zone, port = rbldnsd
    sections = (f'[publish]\nrbldnsd_file = "{zone}"\nrbldnsd_interval = "10s"\nrbldnsd_ttl = "5m"\n')
    milter = start_milter(config_text(sections=sections))
    # Listed by hand, then a SIGHUP: the daemon's index has it, and the next
    # round (every 10 s; one runs at start) writes it out.
    cli(milter.config_path, "cache", "set", "192.0.2.44", "open")
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: dig(port, reversed_name("192.0.2.44")) == "127.0.0.2", timeout=30), zone.read_text()
    assert "$TTL 300" in zone.read_text()
    cli(milter.config_path, "cache", "forget", "192.0.2.44")
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: dig(port, reversed_name("192.0.2.44")) == "", timeout=30), zone.read_text()
    assert "level=error" not in milter.log(), milter.log()
