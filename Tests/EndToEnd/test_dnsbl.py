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
from mailharness.swaks import swaks

ZONE = "bl.relay-milter.test"


def cli(config, *args):
    result = subprocess.run([binary(), *args, "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def dig(port, name, kind="A", check=True, server="127.0.0.1"):
    """The answer's records, one per line ("" for none); None, unchecked, when nobody answered."""
    result = subprocess.run(["dig", f"@{server}", "-p", str(port), "+short", "+time=2", "+tries=1", name, kind],
                            capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        assert not check, result.stdout + result.stderr
        return None
    return result.stdout.strip()


def reversed_name(ip):
    return ".".join(reversed(ip.split("."))) + "." + ZONE


def serve_zone(zone, address, port):
    """rbldnsd serving `zone` (an ip4set file) as ZONE on address:port, once it answers."""
    # -c 1s: rbldnsd looks for a changed file every second (its default is a minute).
    proc = subprocess.Popen(["rbldnsd", "-n", "-q", "-c", "1s", "-b", f"{address}/{port}", "-w", str(zone.parent),
                             f"{ZONE}:ip4set:{zone.name}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert wait_until(lambda: proc.poll() is not None
                      or dig(port, reversed_name("127.0.0.2"), check=False, server=address) is not None, timeout=10)
    assert proc.poll() is None, proc.stdout.read()
    return proc


def zone_file(workdir, text="$TTL 60\n"):
    zone = workdir / "zones" / "open-relays"
    zone.parent.mkdir(exist_ok=True)
    zone.parent.chmod(0o755)
    zone.write_text(text)
    zone.chmod(0o644)
    return zone


@pytest.fixture
def rbldnsd(workdir):
    zone = zone_file(workdir)
    port = free_port()
    proc = serve_zone(zone, "127.0.0.1", port)
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


# On port 53, where resolv.conf's nameserver lines point (they take no port).
DNS_SERVER = "127.0.0.153"
LISTED, NOT_LISTED = "127.0.0.3", "127.0.0.9"


def test_a_consuming_instance_and_postfix_reject_rbl_client_agree(workdir, start_milter, start_postfix, sink):
    # The zone: one instance's verdicts, exported.
    publisher = workdir / "publisher.toml"
    publisher.write_text(config_text(sections=f'[cache]\npath = "{workdir}/published.sqlite"\n'))
    cli(publisher, "cache", "set", LISTED, "open")
    cli(publisher, "cache", "set", NOT_LISTED, "closed")
    zone = zone_file(workdir)
    cli(publisher, "cache", "export", "--format", "rbldnsd", "--output", str(zone))
    server = serve_zone(zone, DNS_SERVER, 53)
    try:
        # A second instance that tests nothing itself and asks the list.
        milter = start_milter(config_text(sections=(
            f'[probe]\nenabled = false\n[dnsbl]\nzones = ["{ZONE}"]\nresolver = "{DNS_SERVER}"\n')))
        guarded = start_postfix(name="guarded", milter=milter.postfix_spec)
        # Postfix itself against the same zone, through the libc resolver.
        resolv = workdir / "resolv.conf"
        resolv.write_text(f"nameserver {DNS_SERVER}\noptions timeout:2 attempts:1\n")
        resolv.chmod(0o644)
        postfix_rbl = start_postfix(name="rbl", resolv_conf=resolv,
                                    extra={"smtpd_client_restrictions": f"reject_rbl_client {ZONE}"})

        # First connections: nothing is cached at connect, so the lookups start
        # then; an answer that is in before MAIL FROM already counts.
        for host in (LISTED, NOT_LISTED):
            swaks(guarded.port, to="bob@example.test", source=host)
        assert wait_until(lambda: milter.metrics().get(("relay_milter_dnsbl_lookups_total", frozenset({("result", "listed")}))) == 1
                          and milter.metrics().get(("relay_milter_dnsbl_lookups_total", frozenset({("result", "not_listed")}))) == 1,
                          timeout=15), milter.log()

        ours, theirs = {}, {}
        for host in (LISTED, NOT_LISTED):
            code, ours[host] = swaks(guarded.port, to="bob@example.test", source=host)
            code, theirs[host] = swaks(postfix_rbl.port, to="bob@example.test", source=host)
        assert f"<** 550 5.7.1 Your host {LISTED} is listed by {ZONE}: open relay (verdict open" in ours[LISTED], ours[LISTED]
        assert f"<** 554 5.7.1 Service unavailable; Client host [{LISTED}] blocked using {ZONE}" in theirs[LISTED], theirs[LISTED]
        assert "<** " not in ours[NOT_LISTED] and "<** " not in theirs[NOT_LISTED], (ours[NOT_LISTED], theirs[NOT_LISTED])
        assert milter.logged("decision.reason=host.dnsbl_listed", f"dnsbl.zone={ZONE}"), milter.log()
    finally:
        server.terminate()
        server.wait(timeout=10)
