"""The open-relay prober against real targets on loopback: Postfix at its
defaults in three configurations, Sendmail as it comes and made open,
scripted servers for what they can't play, and nmap's smtp-open-relay as the
outside reference."""
import json
import re
import subprocess

import pytest

from mailharness.fakesmtp import (FakeServer, auth_required, banner_554, not_smtp, pipelining_open_relay,
                                  recording_open_relay, slow_start, tarpit)
from mailharness.ports import free_port
from mailharness.relaymilter import binary, cached_verdicts

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


@pytest.fixture
def postfix_targets(start_postfix):
    """Postfix at its defaults (error limits and sleeps included), each with
    the one change that makes it what it is."""
    return {
        "open": start_postfix(name="open", mynetworks="0.0.0.0/0", relaxed_limits=False),
        "closed": start_postfix(name="closed", mynetworks="127.0.0.1/32", relaxed_limits=False),
        "rcpt_only": start_postfix(name="rcpt-only", mynetworks="0.0.0.0/0", relaxed_limits=False,
                                   extra={"smtpd_data_restrictions": "reject"}),
    }


def test_sendmail_targets_get_the_expected_verdicts(probe_config, start_sendmail, sink):
    """Sendmail as the tested host: as it comes (relaying for no network, so it
    refuses the tests from 127.0.0.2 itself), and made an open relay by
    FEATURE(`promiscuous_relay'); nmap's smtp-open-relay agrees on both."""
    targets = {"closed": start_sendmail(name="closed-sendmail", relay_networks=()),
               "open": start_sendmail(name="open-sendmail", features=("promiscuous_relay",))}
    for expected, sendmail in targets.items():
        report = probe(probe_config, f"127.0.0.1:{sendmail.port}")
        assert report["verdict"] == expected, report["detail"]
        assert len(report["tests"]) == 20 and report["hostname"] == "mx.example.test", report
        assert nmap_says(sendmail.port) == expected
    assert sink.recipients() == []


def test_postfix_targets_get_the_expected_verdicts(probe_config, postfix_targets, sink):
    for expected, postfix in postfix_targets.items():
        report = probe(probe_config, f"127.0.0.1:{postfix.port}")
        assert report["verdict"] == expected, report["detail"]
        assert report["hostname"] == "mx.example.test"
        assert len(report["tests"]) == 20
        assert all(t["mail"] is not None for t in report["tests"]), report
    # Postfix's own defences at their defaults: after ten refusals it slows
    # every reply, and after twenty it ends the session with 421 at the RSET
    # that follows the last test. Twenty refusals, then a 421, is a closed
    # server, not a temporary failure.
    assert "too many errors" in postfix_targets["closed"].log()
    # Nothing was ever relayed: the prober never sent a message.
    assert sink.recipients() == []
    for postfix in postfix_targets.values():
        assert "status=sent" not in postfix.log()


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


def test_text_report_reads_like_the_public_testers(probe_config, postfix_targets):
    result = subprocess.run([binary(), "probe", "--config", str(probe_config),
                             f"127.0.0.1:{postfix_targets['closed'].port}"], capture_output=True, text=True, timeout=120)
    assert "Relay test of 127.0.0.1:" in result.stdout
    assert re.search(r" 5  percent hack via IP literal\s+250\s+554\s+-\s+MAIL FROM:<antispam@\[127.0.0.1\]> "
                     r"RCPT TO:<relaytest%relay-test.example@\[127.0.0.1\]>", result.stdout), result.stdout
    assert result.stdout.rstrip().endswith("Verdict: closed (refused all 20 tests)")


def nmap_says(port):
    result = subprocess.run(
        ["nmap", "-n", "-Pn", "-sV", "--version-light", "-p", str(port), "-S", PROBE_SOURCE, "-e", "lo",
         "--script", "smtp-open-relay", "--script-args", "smtp-open-relay.domain=relay-test.example",
         "127.0.0.1"], capture_output=True, text=True, timeout=300)
    match = re.search(r"smtp-open-relay: (.*)", result.stdout)
    assert match, result.stdout
    return "open" if match.group(1).startswith("Server is an open relay") else "closed"


def test_agrees_with_nmap_except_where_nmap_is_known_wrong(probe_config, postfix_targets):
    ours = {name: probe(probe_config, f"127.0.0.1:{pf.port}")["verdict"] for name, pf in postfix_targets.items()}
    theirs = {name: nmap_says(pf.port) for name, pf in postfix_targets.items()}
    assert ours["open"] == theirs["open"] == "open"
    assert ours["closed"] == theirs["closed"] == "closed"
    # nmap stops at RCPT, so a server that accepts RCPT but refuses DATA looks open to it.
    assert theirs["rcpt_only"] == "open"
    assert ours["rcpt_only"] == "rcpt_only"
