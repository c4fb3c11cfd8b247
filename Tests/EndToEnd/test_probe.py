"""The open-relay prober against real targets on loopback: Postfix at its
defaults in three configurations, Sendmail as it comes and made open,
scripted servers for what they can't play, and nmap's smtp-open-relay as the
outside reference."""
import json
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

from pathlib import Path

import pytest

from mailharness.exim import EximInstance
from mailharness.exim import available as exim_available
from mailharness.fakesmtp import (FakeServer, auth_required, banner_554, hostile_banner, not_smtp, pipelining_open_relay,
                                  recording_open_relay, slow_start, tarpit)
from mailharness.nmap import nmap_open_relay
from mailharness.opensmtpd import OpenSMTPDInstance
from mailharness.opensmtpd import available as opensmtpd_available
from mailharness.ports import free_port
from mailharness.postgrey import PostgreyInstance
from mailharness.relaymilter import binary, cached_verdicts

REPO = Path(__file__).resolve().parents[2]
PROBE_SOURCE = "127.0.0.2"  # outside every test Postfix's mynetworks but the open one's


@pytest.fixture
def probe_config(workdir):
    path = workdir / "probe.toml"
    # Its own verdict database: never the system's /var/lib/relay-milter.
    path.write_text('[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
                    f'source_address = "{PROBE_SOURCE}"\ncommand_timeout = 3\nconnect_timeout = 3\n'
                    f'[cache]\npath = "{workdir}/verdicts.sqlite"\n')
    return path


def probe(config, target):
    result = subprocess.run([binary(), "probe", "--config", str(config), "--json", target],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@dataclass
class Target:
    """One row of the target suite: a real MTA in one configuration, what
    relay-milter's successive probes of it say, and what nmap says."""
    mta: str
    configuration: str
    start: Callable  # (harness) -> instance with .port
    verdicts: tuple  # each probe's verdict, in order (a retest follows a tempfail)
    nmap: str  # "open" or "closed"
    note: str = ""
    retest_after: float = 0  # seconds between probes

    @property
    def id(self):
        return f"{self.mta}: {self.configuration}"


class Harness:
    """What a target needs to start: the suite's fixtures, and a place for
    the processes the fixtures do not manage."""

    def __init__(self, workdir, start_postfix, start_sendmail):
        self.workdir = workdir
        self.start_postfix = start_postfix
        self.start_sendmail = start_sendmail
        self.started = []

    def own(self, instance):
        self.started.append(instance)
        return instance.start()

    def postgrey(self, delay):
        return self.own(PostgreyInstance(self.workdir / "postgrey", delay=delay))


def postfix(**settings):
    # Postfix's defaults (error limits, error sleeps, smtpd_relay_restrictions),
    # but for mynetworks: its default takes in all of 127.0.0.0/8.
    return lambda h: h.start_postfix(name="target", mynetworks="127.0.0.1/32", relaxed_limits=False,
                                     relay_restrictions=None, extra=settings)


DEEP_PROTOCOL_TESTS = {"postscreen_pipelining_enable": "yes", "postscreen_non_smtp_command_enable": "yes",
                       "postscreen_bare_newline_enable": "yes"}


def postscreen(**settings):
    return lambda h: h.start_postfix(name="target", mynetworks="127.0.0.1/32", relaxed_limits=False,
                                     relay_restrictions=None, postscreen=True, extra={**DEEP_PROTOCOL_TESTS, **settings})


# An open relay behind postscreen or greylisting: its relay rule lets every
# client through. (Postfix refuses to start with a plain `permit`: a relay
# list must hold a reject or defer, which follows here, never reached.)
OPEN_RELAY_RULE = "permit_mynetworks, permit_sasl_authenticated, check_client_access static:OK, defer_unauth_destination"

# Longer than one probe takes (about 65 s: two batteries against Postfix's error
# sleeps), or a test would pass on a triplet tried earlier in the same probe.
GREYLIST_DELAY = 90


def postgrey(open_relay):
    """Postfix with postgrey as Debian's README.Debian of postgrey sets it up
    (permit_mynetworks, reject_unauth_destination, then the policy service);
    made open by leaving out reject_unauth_destination and letting every client relay."""
    def start(h):
        grey = h.postgrey(GREYLIST_DELAY)
        if open_relay:
            settings = {"smtpd_relay_restrictions": OPEN_RELAY_RULE,
                        "smtpd_recipient_restrictions": f"permit_mynetworks, {grey.policy_service}"}
        else:
            settings = {"smtpd_recipient_restrictions": f"permit_mynetworks, reject_unauth_destination, {grey.policy_service}"}
        return postfix(**settings)(h)
    return start


def exim(**kwargs):
    return lambda h: h.own(EximInstance(h.workdir / "exim", **kwargs))


def opensmtpd(**kwargs):
    return lambda h: h.own(OpenSMTPDInstance(h.workdir / "opensmtpd", **kwargs))


def sendmail(**kwargs):
    return lambda h: h.start_sendmail(name="target", **kwargs)


TARGETS = [
    Target("Postfix 3.7", "defaults", postfix(), ("closed",), "closed",
           "refuses relaying with a 4xx (`defer_unauth_destination`: `454 4.7.1 Relay access denied`), "
           "and ends the session after 20 refusals (`421`)"),
    Target("Postfix 3.7", "`mynetworks = 0.0.0.0/0`", lambda h: h.start_postfix(
        name="target", mynetworks="0.0.0.0/0", relaxed_limits=False, relay_restrictions=None), ("open",), "open"),
    Target("Postfix 3.7", "`mynetworks = 0.0.0.0/0`, `smtpd_data_restrictions = reject`", lambda h: h.start_postfix(
        name="target", mynetworks="0.0.0.0/0", relaxed_limits=False, relay_restrictions=None,
        extra={"smtpd_data_restrictions": "reject"}), ("rcpt_only",), "open",
           "nmap stops at RCPT; the prober's `DATA` shows that nothing would be relayed"),
    Target("Postfix 3.7 + postscreen", "deep-protocol tests on", postscreen(), ("closed",), "closed",
           "first visit: postscreen answers `450` and ends the session (too many commands); "
           "the prober's later connections reach smtpd, and the tests refused for now run again"),
    Target("Postfix 3.7 + postscreen", "deep-protocol tests on, `check_client_access static:OK` in the relay rule",
           postscreen(smtpd_relay_restrictions=OPEN_RELAY_RULE), ("open",), "open",
           "postscreen ends the first session (too many commands) and passes the client; "
           "the prober's next connection reaches smtpd"),
    Target("Postfix 3.7 + postgrey 1.37", "README.Debian's restrictions", postgrey(open_relay=False), ("closed",), "closed"),
    Target("Postfix 3.7 + postgrey 1.37", "`check_client_access static:OK` in the relay rule, greylisting", postgrey(open_relay=True),
           ("tempfail", "open"), "open", retest_after=GREYLIST_DELAY + 1, note=
           f"greylisted (`450`) until retried after the delay ({GREYLIST_DELAY} s here, 300 s by default); "
           "nmap runs after the retest, when postgrey lets the same sender and recipient through"),
    Target("Sendmail 8.17", "as it comes", sendmail(relay_networks=()), ("closed",), "closed"),
    Target("Sendmail 8.17", "`FEATURE(promiscuous_relay)`", sendmail(features=("promiscuous_relay",)), ("open",), "open"),
    Target("Exim 4.96", "Debian's internet-site config", exim(), ("closed",), "closed",
           "answers `501` to `MAIL FROM:<user@[IP]>` and hangs up after three such syntax errors; "
           "the prober reconnects to finish"),
    Target("Exim 4.96", "`dc_relay_nets = 0.0.0.0/0`", exim(relay_nets="0.0.0.0/0"), ("open",), "open"),
    Target("OpenSMTPD 6.8", "Debian's `smtpd.conf`", opensmtpd(), ("closed",), "closed"),
    Target("OpenSMTPD 6.8", "`match from any for any action \"relay\"`", opensmtpd(relay_from="any"), ("open",), "open"),
]


def targets_table():
    """TARGETS as docs/REFERENCE.md shows them, between its probe-targets markers."""
    rows = ["| MTA | Configuration | `relay-milter probe` | nmap `smtp-open-relay` | Why |", "|---|---|---|---|---|"]
    for t in TARGETS:
        cells = [t.mta, t.configuration.replace("|", "\\|"), ", then ".join(f"`{v}`" for v in t.verdicts),
                 f"`{t.nmap}`", t.note]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def test_the_reference_shows_the_target_suite_as_it_runs():
    readme = (REPO / "docs" / "REFERENCE.md").read_text()
    begin, end = "<!-- probe-targets: generated from Tests/EndToEnd/test_probe.py TARGETS -->", "<!-- /probe-targets -->"
    assert begin in readme and end in readme
    shown = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert shown == targets_table(), "docs/REFERENCE.md's table differs from TARGETS; paste this:\n" + targets_table()


@pytest.fixture
def harness(workdir, start_postfix, start_sendmail):
    h = Harness(workdir, start_postfix, start_sendmail)
    yield h
    for instance in h.started:
        instance.stop()


def default_probe_config(workdir):
    """The prober at its default timeouts: postscreen's banner alone takes its
    greet wait (6 s), longer than the suite's usual 3 s."""
    path = workdir / "default-probe.toml"
    path.write_text('[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
                    f'source_address = "{PROBE_SOURCE}"\n[cache]\npath = "{workdir}/verdicts.sqlite"\n')
    return path


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_every_target_gets_its_verdict_and_nmap_is_beside_it(workdir, harness, sink, target):
    if target.mta.startswith(("Exim", "OpenSMTPD")) and not (exim_available() and opensmtpd_available()):
        pytest.fail("Exim or OpenSMTPD is missing: run Scripts/install-probe-targets (Scripts/install-deps does)")
    instance = target.start(harness)
    config = default_probe_config(workdir)
    reports = []
    for number, expected in enumerate(target.verdicts):
        if number:
            time.sleep(target.retest_after)
        report = probe(config, f"127.0.0.1:{instance.port}")
        reports.append(report)
        assert report["verdict"] == expected, (number, report["detail"], report["tests"])
        assert report["hostname"] == "mx.example.test", report
        # A slow or defended closed host is judged, not timed out.
        assert "timed out" not in report["detail"], report["detail"]
    final = reports[-1]
    if final["verdict"] == "closed":
        # Judged on what it answered: most of the battery, despite error limits and hang-ups.
        answered = [t for t in final["tests"] if t.get("rcpt") or t.get("mail", 250) >= 400]
        assert len(answered) >= 15, final
    assert target.nmap == ("open" if nmap_open_relay(instance.port, source=PROBE_SOURCE, domain="relay-test.example")
                           .startswith("Server is an open relay") else "closed")
    # Nothing was ever relayed: the prober never sent a message.
    assert sink.recipients() == []


def test_source_picks_where_the_tests_come_from_and_a_self_probe_is_flagged(workdir, start_postfix, sink):
    """Probing one's own MX from itself: the tests come from an address it
    trusts, so it looks open. --source picks an address it does not trust;
    a warning says when the source is likely trusted (here, loopback)."""
    config = workdir / "plain.toml"
    config.write_text(f'[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
                      f'[cache]\npath = "{workdir}/v.sqlite"\n')
    postfix = start_postfix(name="own-mx", mynetworks="127.0.0.1/32")
    target = f"127.0.0.1:{postfix.port}"
    result = subprocess.run([binary(), "probe", "--config", str(config), "--json", "--no-store", target],
                            capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout)["verdict"] == "open"
    assert "warning: the tests come from loopback" in result.stderr, result.stderr
    result = subprocess.run([binary(), "probe", "--config", str(config), "--json", "--no-store", "--source", PROBE_SOURCE,
                             target], capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout)["verdict"] == "closed", result.stdout
    assert f"the tests come from {PROBE_SOURCE}" in result.stderr
    bad = subprocess.run([binary(), "probe", "--config", str(config), "--source", "mx.example", target],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and '--source "mx.example" is not an IP address' in bad.stderr
    assert sink.recipients() == []


@pytest.mark.parametrize("behaviour, verdict", [
    (auth_required, "auth_required"),
    (banner_554, "no_smtp"),
    (tarpit, "unreachable"),
    (not_smtp, "no_smtp"),
])
def test_scripted_targets(probe_config, behaviour, verdict):
    server = FakeServer(behaviour).start()
    try:
        report = probe(probe_config, f"127.0.0.1:{server.port}")
        assert report["verdict"] == verdict, report
    finally:
        server.stop()


def test_a_slow_server_is_waited_for_while_each_step_stays_within_the_command_timeout(probe_config):
    # 3 s command timeout, 2 s per step for four steps: each step's timeout is
    # restarted by the step before, so the test must outlast the first 3 s.
    server = FakeServer(slow_start(2.0)).start()
    try:
        report = probe(probe_config, f"127.0.0.1:{server.port}")
        assert report["verdict"] == "closed", report
        assert len(report["tests"]) == 20
    finally:
        server.stop()


def test_port_with_no_listener(probe_config):
    report = probe(probe_config, f"127.0.0.1:{free_port()}")
    assert report["verdict"] == "no_smtp" and report["detail"] == "connection refused"


@pytest.mark.parametrize("behaviour", [recording_open_relay, pipelining_open_relay])
def test_nothing_is_sent_after_354(probe_config, behaviour):
    server = FakeServer(behaviour).start()
    try:
        report = probe(probe_config, f"127.0.0.1:{server.port}")
        assert report["verdict"] == "open"
        assert len(report["accepted"]) == 20
        assert server.after_354 == [b""], server.after_354  # one 354, then not a byte, and closed
        assert server.connections == 2  # the rest of the battery ran on a fresh connection
        # DATA always goes alone; MAIL and RCPT go together only where PIPELINING is offered.
        assert [read for read in server.reads if "DATA" in read] == [["DATA"]], server.reads
        grouped = [read for read in server.reads if len(read) > 1]
        if behaviour is pipelining_open_relay:
            assert any(read[-2].startswith("MAIL FROM:") and read[-1].startswith("RCPT TO:") for read in grouped), server.reads
        else:
            assert grouped == [], grouped
    finally:
        server.stop()


def test_a_probe_stores_its_verdict_unless_told_not_to(probe_config):
    server = FakeServer(recording_open_relay).start()
    try:
        target = f"127.0.0.1:{server.port}"
        result = subprocess.run([binary(), "probe", "--config", str(probe_config), "--no-store", target],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert cached_verdicts(probe_config) == []
        report = probe(probe_config, target)
        assert report["verdict"] == "open"
        [record] = cached_verdicts(probe_config)
        # Stored as the daemon stores a test it ran: under the host, without the port.
        assert (record["host"], record["verdict"], record["source"]) == ("127.0.0.1", "open", "probe"), record
        assert len(record["accepted_tests"]) == 20 and record["tests_run"] >= 20, record
    finally:
        server.stop()


def test_what_a_server_says_reaches_the_terminal_and_the_csv_defused(probe_config):
    server = FakeServer(hostile_banner).start()
    try:
        def cli(*args):
            result = subprocess.run([binary(), *args, "--config", str(probe_config)], capture_output=True, timeout=120)
            assert result.returncode == 0, result.stderr
            return result.stdout.decode()
        report = cli("probe", f"127.0.0.1:{server.port}")
        shown = cli("cache", "show", "127.0.0.1")
        csv = cli("cache", "export", "--format", "csv")
    finally:
        server.stop()
    for output in (report, shown, csv):
        assert not any(c in output for c in "\x1b\x07"), repr(output)
    assert "ESMTP" in report and "\\x1b]2;owned\\x07\\x1b[31mESMTP" in report, report
    assert "Verdict: closed" in report, report
    assert "banner:   =cmd|' /c calc'!A1 \\x1b]2;owned\\x07\\x1b[31mESMTP" in shown, shown
    # A formula to a spreadsheet no more: the cell starts with a quote mark.
    assert ",'=cmd|' /c calc'!A1 \\x1b]2;owned" in csv.splitlines()[1], csv
    # JSON keeps the text exact: its encoder escapes control characters itself.
    assert json.loads(subprocess.run([binary(), "cache", "list", "--json", "--config", str(probe_config)],
                                     capture_output=True, text=True, check=True).stdout)["banner"].endswith("\x1b[31mESMTP")


def test_progress_shows_on_a_terminal_only(probe_config, start_postfix):
    """A Postfix at its defaults takes half a minute to refuse twenty tests
    (its error sleeps): on a terminal a progress line keeps the admin
    informed, and is erased before the report; piped or under --json, none."""
    closed = start_postfix(name="closed", mynetworks="127.0.0.1/32", relaxed_limits=False, relay_restrictions=None)
    command = f"{binary()} probe --config {probe_config} --no-store 127.0.0.1:{closed.port}"
    # script(1) runs the command on a pseudo-terminal and copies what it writes, both streams.
    # Bytes: text mode would turn each carriage return into a line feed.
    on_terminal = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=120)
    shown = on_terminal.stdout.decode()
    assert on_terminal.returncode == 0, shown
    assert re.search(r"Testing 127\.0\.0\.1:\d+: 1[0-9] of 20 tests answered, 0 accepted", shown), shown
    assert "\r\x1b[K" in shown  # each update rewrites the line, and the last erases it
    assert "Verdict: closed" in shown.split("\x1b[K")[-1]
    piped = subprocess.run(command.split(), capture_output=True, text=True, timeout=120)
    assert "Testing" not in piped.stderr and "\x1b" not in piped.stderr + piped.stdout, piped.stderr
    as_json = subprocess.run(["script", "-qec", command + " --json", "/dev/null"], capture_output=True, text=True, timeout=120)
    assert "Testing" not in as_json.stdout and json.loads(as_json.stdout[as_json.stdout.index("{"):])["verdict"] == "closed"


def test_text_report_reads_like_the_public_testers(probe_config, start_postfix):
    closed = start_postfix(name="closed", mynetworks="127.0.0.1/32", relaxed_limits=False, relay_restrictions=None)
    result = subprocess.run([binary(), "probe", "--config", str(probe_config), f"127.0.0.1:{closed.port}"],
                            capture_output=True, text=True, timeout=120)
    assert "Relay test of 127.0.0.1:" in result.stdout
    assert re.search(r" 5  percent hack via IP literal\s+250\s+454\s+-\s+MAIL FROM:<antispam@\[127.0.0.1\]> "
                     r"RCPT TO:<relaytest%relay-test.example@\[127.0.0.1\]>", result.stdout), result.stdout
    assert result.stdout.rstrip().endswith(
        "Verdict: closed (refused all 20 tests (20 with a 4xx naming relaying as the reason))"), result.stdout


def test_the_tests_send_to_the_admins_own_domain(workdir, start_postfix, sink):
    """With [probe] test_domain left empty the tests send to the first local
    domain. A real Postfix that relays for anyone but refuses reserved
    recipient domains (check_recipient_access, as some admins write it) is
    open that way; tested with relay-test.invalid, the old default, it looks
    closed, and check-config warns about that domain."""
    reserved = workdir / "reserved-domains"
    reserved.write_text("/\\.(invalid|test|example|localhost)$/ REJECT reserved domain\n")
    picky = start_postfix(name="picky-open", mynetworks="0.0.0.0/0",
                          extra={"smtpd_recipient_restrictions": f"check_recipient_access regexp:{reserved}"})
    target = f"127.0.0.1:{picky.port}"
    own = workdir / "own.toml"
    own.write_text('[policy]\nlocal_domains = ["mx.example.org"]\n[probe]\nallow_loopback = true\n'
                   f'source_address = "{PROBE_SOURCE}"\n[cache]\npath = "{workdir}/v.sqlite"\n')
    assert probe(own, target)["verdict"] == "open"
    checked = subprocess.run([binary(), "check-config", "--strict", "--config", str(own)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr

    invalid = workdir / "invalid.toml"
    invalid.write_text(own.read_text().replace("[probe]\n", '[probe]\ntest_domain = "relay-test.invalid"\n'))
    assert probe(invalid, target)["verdict"] == "closed"
    checked = subprocess.run([binary(), "check-config", "--strict", "--config", str(invalid)], capture_output=True, text=True)
    assert checked.returncode == 78 and 'probe.test_domain: the open-relay tests send to "relay-test.invalid"' in checked.stderr
    assert "reject: RCPT from" in picky.log() and "reserved domain" in picky.log()
    assert sink.recipients() == []
