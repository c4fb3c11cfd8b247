"""The verdict cache published as a DNS blocklist (issue 8, point 2): the
zone `relay-milter cache export --format rbldnsd` writes, and the one the
daemon keeps up to date ([publish]), served by a real rbldnsd on a
loopback port and asked with dig, list exactly the IPv4 hosts with an
unexpired bad verdict, and a rewrite reaches rbldnsd."""
import ipaddress
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
    """The DNSBL name of an address: IPv4 octets, or IPv6 nibbles (RFC 5782), last first."""
    address = ipaddress.ip_address(ip)
    labels = ip.split(".") if address.version == 4 else list(address.exploded.replace(":", ""))
    return ".".join(reversed(labels)) + "." + ZONE


def serve_zone(zone, address, port, ipv6_zone=None):
    """rbldnsd serving `zone` (an ip4set file), and `ipv6_zone` (an ip6trie file
    in the same directory) beside it, as ZONE on address:port, once it answers."""
    datasets = [f"{ZONE}:ip4set:{zone.name}"] + ([f"{ZONE}:ip6trie:{ipv6_zone.name}"] if ipv6_zone else [])
    # -c 1s: rbldnsd looks for a changed file every second (its default is a minute).
    proc = subprocess.Popen(["rbldnsd", "-n", "-q", "-c", "1s", "-b", f"{address}/{port}", "-w", str(zone.parent),
                             *datasets], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert wait_until(lambda: proc.poll() is not None
                      or dig(port, reversed_name("127.0.0.2"), check=False, server=address) is not None, timeout=10)
    assert proc.poll() is None, proc.stdout.read()
    return proc


def zone_file(workdir, text="$TTL 60\n", name="open-relays"):
    zone = workdir / "zones" / name
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


def test_ipv6_open_relays_are_published_and_refused_through_the_list(workdir, start_milter, start_postfix, sink):
    """IPv6 hosts in the published zone (rbldnsd's ip6trie beside the ip4set,
    one zone name) and an IPv6 client looked up by its nibbles: a consuming
    instance behind a Postfix on [::1] refuses ::1, listed by the publisher."""
    zone4, zone6 = zone_file(workdir), zone_file(workdir, name="open-relays6")
    publisher = start_milter(config_text(sections=(
        f'[probe]\nenabled = false\n[publish]\nrbldnsd_file = "{zone4}"\nrbldnsd_ipv6_file = "{zone6}"\n'
        'rbldnsd_interval = "10s"\n')), name="publisher")
    for host in ("::1", "2001:db8::7", "192.0.2.7"):
        cli(publisher.config_path, "cache", "set", host, "open")
    cli(publisher.config_path, "cache", "set", "2001:db8::8", "closed")
    publisher.signal(signal.SIGHUP)
    port = free_port()
    server = serve_zone(zone4, "127.0.0.1", port, ipv6_zone=zone6)
    try:
        assert wait_until(lambda: dig(port, reversed_name("2001:db8::7")) == "127.0.0.2", timeout=30), zone6.read_text()
        assert "open relay (verdict open)" in dig(port, reversed_name("2001:db8::7"), "TXT")
        assert dig(port, reversed_name("192.0.2.7")) == "127.0.0.2"
        assert dig(port, reversed_name("2001:db8::8")) == ""
        assert "192.0.2.7" not in zone6.read_text() and "2001:db8" not in zone4.read_text()

        consumer = start_milter(config_text(trusted=("127.0.0.1/32",), sections=(
            f'[probe]\nenabled = false\n[dnsbl]\nzones = ["{ZONE}"]\nresolver = "127.0.0.1:{port}"\n')), name="consumer")
        guarded = start_postfix(listen="::1", mynetworks="127.0.0.0/8 [::1]/128", milter=consumer.postfix_spec,
                                relaxed_limits=False)
        # The first connection from ::1 (the harness's check that Postfix
        # listens) started the lookup; nothing waits on it.
        listed = ("relay_milter_dnsbl_lookups_total", frozenset({("result", "listed")}))
        assert wait_until(lambda: consumer.metrics().get(listed) == 1, timeout=15), consumer.log()
        code, out = swaks(guarded.port, server="::1", source="::1", to="bob@example.test")
        assert f"<** 550 5.7.1 Your host ::1 is listed by {ZONE}: open relay (verdict open" in out, out
        assert consumer.logged("decision.reason=host.dnsbl_listed", "client.address=::1"), consumer.log()
    finally:
        server.terminate()
        server.wait(timeout=10)
