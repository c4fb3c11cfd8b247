"""Open-relay verdicts enforced at MAIL FROM through a real Postfix. The
suspect is itself a real Postfix, an open relay listening on 127.0.0.3, which
then sends mail from 127.0.0.3 into the Postfix guarded by relay-milter."""
import json
import subprocess
import time

from mailharness.ports import wait_until
from mailharness.relaymilter import binary, cached_verdicts, config_text
from mailharness.swaks import swaks

SUSPECT = "127.0.0.3"


def probing_config(port, **enforcement):
    lines = "".join(f'{k} = "{v}"\n' for k, v in enforcement.items())
    return config_text(sections=(
        '[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
        f'port = {port}\nsource_address = "127.0.0.4"\nnetwork_interval = 0\ncommand_timeout = 5\n'
        '[enforcement]\n' + lines))


def finished_tests(milter):
    return [l for l in milter.log().splitlines() if 'msg="open-relay test finished"' in l]


def test_open_relay_is_found_then_refused_and_stays_refused_after_restart(start_milter, start_postfix, sink):
    suspect = start_postfix(name="suspect", listen=SUSPECT, mynetworks="0.0.0.0/0")
    milter = start_milter(probing_config(suspect.port))
    guarded = start_postfix(name="guarded", milter=milter.postfix_spec)

    # Unknown host: accepted, and a test is queued in the background.
    code, out = swaks(guarded.port, to="bob@example.test", source=SUSPECT)
    assert code == 0, out
    assert wait_until(lambda: finished_tests(milter), timeout=60), milter.log()
    line = finished_tests(milter)[0]
    assert f"client.address={SUSPECT}" in line and "probe.verdict=open" in line and "probe.accepted=20/20" in line

    code, out = swaks(guarded.port, to="bob@example.test", source=SUSPECT)
    assert code != 0
    assert f"<** 550 5.7.1 Your host {SUSPECT} was found to be an open relay on" in out, out
    assert "(20/20 anonymous relay tests accepted)" in out
    assert milter.logged('msg="host decision"', "decision.reason=host.open_relay"), milter.log()
    metrics = milter.metrics()
    assert metrics[("relay_milter_probe_tests_total", frozenset({("verdict", "open")}))] == 1
    assert metrics[("relay_milter_cache_entries", frozenset({("verdict", "open")}))] == 1
    assert metrics[("relay_milter_decisions_total", frozenset({("stage", "mail"), ("action", "reject"), ("reason", "host.open_relay")}))] == 1
    assert metrics[("relay_milter_cache_lookups_total", frozenset({("result", "miss")}))] >= 1
    assert metrics[("relay_milter_cache_lookups_total", frozenset({("result", "hit")}))] >= 1

    # Trusted clients are exempt even when listed; others are refused; a restart keeps the verdict.
    assert milter.stop() == 0
    before = len(milter.log())
    milter.start()
    assert "cache.entries=1" in milter.log()[before:]
    code, out = swaks(guarded.port, to="bob@example.test", source=SUSPECT)
    assert "<** 550 5.7.1 Your host 127.0.0.3 was found to be an open relay" in out, out
    assert not finished_tests(milter)[1:], "the host was tested again"
    # The prober sent no message: the open relay delivered nothing anywhere.
    assert sink.recipients() == [] and "status=sent" not in suspect.log()

    # stats reports the cache by verdict.
    stats = subprocess.run([binary(), "stats", "--config", str(milter.config_path), "--json"], capture_output=True, text=True)
    assert json.loads(stats.stdout)["cacheByVerdict"] == {"open": 1}
    # The CLI sees the same record.
    [record] = cached_verdicts(milter.config_path)
    assert record["host"] == SUSPECT and record["verdict"] == "open" and len(record["accepted_tests"]) == 20


def test_tag_action_delivers_with_the_open_relay_header(start_milter, start_postfix, sink):
    suspect = start_postfix(name="suspect", listen=SUSPECT, mynetworks="0.0.0.0/0")
    milter = start_milter(probing_config(suspect.port, action="tag"))
    guarded = start_postfix(name="guarded", milter=milter.postfix_spec)
    assert swaks(guarded.port, to="bob@example.test", source=SUSPECT)[0] == 0
    assert wait_until(lambda: finished_tests(milter), timeout=60)
    assert swaks(guarded.port, to="carol@example.test", source=SUSPECT)[0] == 0
    assert wait_until(lambda: len(guarded.delivered()) == 2)
    tagged = [m for m in guarded.delivered() if "carol@example.test" in m][0]
    assert "X-Relay-Milter-Open-Relay: yes; verdict=open; tested=" in tagged
    assert "; tests=20/20" in tagged
    first = [m for m in guarded.delivered() if "bob@example.test" in m][0]
    assert "X-Relay-Milter-Open-Relay" not in first


def test_unknown_hosts_tempfailed_until_tested(start_milter, start_postfix, sink):
    closed = start_postfix(name="closed-host", listen="127.0.0.5", mynetworks="127.0.0.1/32")
    milter = start_milter(probing_config(closed.port, unknown_action="tempfail"))
    guarded = start_postfix(name="guarded", milter=milter.postfix_spec)
    code, out = swaks(guarded.port, to="bob@example.test", source="127.0.0.5")
    assert code != 0
    assert "<** 451 4.7.1 Your host 127.0.0.5 has not been tested for open relaying yet" in out, out
    assert wait_until(lambda: finished_tests(milter), timeout=60)
    assert "probe.verdict=closed" in finished_tests(milter)[0]
    assert swaks(guarded.port, to="bob@example.test", source="127.0.0.5")[0] == 0


def test_cache_commands(start_milter, workdir):
    config = workdir / "c.toml"
    config.write_text(config_text() + f'\n[cache]\npath = "{workdir}/v.sqlite"\n')

    def cli(*args):
        r = subprocess.run([binary(), "cache", *args, "--config", str(config)], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    assert cli("set", "192.0.2.7", "open")[0] == 0
    assert cli("set", "2001:DB8::8", "closed", "--ttl", "365d")[0] == 0
    assert cli("set", "192.0.2.9", "open", "--ttl", "0s")[0] == 0
    code, out = cli("list")
    assert "192.0.2.7" in out and "2001:db8::8" in out and "3 host(s)" in out and "(expired)" in out
    code, out = cli("show", "192.0.2.7")
    assert "verdict:  open" in out and "source:   manual" in out
    assert cli("list", "--verdict", "closed")[1].count("\n") == 3
    code, out = cli("export", "--format", "csv")
    assert out.splitlines()[0] == "host,verdict,tested_at,expires_at,source,accepted,tests_run,banner"
    assert len(out.splitlines()) == 4
    assert [json.loads(l)["host"] for l in cli("export", "--format", "json")[1].splitlines()] == \
        ["192.0.2.7", "192.0.2.9", "2001:db8::8"]
    assert cli("purge-expired")[1] == "1 expired record(s) removed\n"
    assert cli("forget", "192.0.2.7")[0] == 0
    code, out = cli("forget", "192.0.2.7")
    assert code != 0 and "192.0.2.7 is not in the cache" in out
    code, out = cli("set", "not-an-ip", "open")
    assert code != 0 and '"not-an-ip" is not an IP address' in out
    code, out = cli("set", "192.0.2.1", "dodgy")
    assert code != 0 and '"dodgy" is not a verdict' in out


def test_manual_listing_reaches_a_running_daemon_at_sighup(start_milter, start_postfix, sink):
    import signal
    milter = start_milter(probing_config(25))
    guarded = start_postfix(name="guarded", milter=milter.postfix_spec)
    subprocess.run([binary(), "cache", "set", "127.0.0.6", "open", "--config", str(milter.config_path)], check=True)
    milter.signal(signal.SIGHUP)
    # At least once more: the daemon may also have noticed the command's commit by itself (below).
    assert wait_until(lambda: milter.log().count('msg="verdict cache loaded"') >= 2)
    code, out = swaks(guarded.port, to="bob@example.test", source="127.0.0.6")
    assert "<** 550 5.7.1 Your host 127.0.0.6 was found to be an open relay" in out, out
    # The reply says what the listing rests on, not "0/0 tests accepted".
    assert "(listed by the administrator)" in out, out


def test_manual_listing_reaches_a_running_daemon_by_itself(start_milter, start_postfix, sink):
    """No signal: before its next write (at least every 10 s, with the
    statistics) the daemon sees that another process committed, and reads
    the hosts it changed, not the whole database again."""
    milter = start_milter(probing_config(25))
    guarded = start_postfix(name="guarded", milter=milter.postfix_spec)
    subprocess.run([binary(), "cache", "set", "127.0.0.6", "open", "--config", str(milter.config_path)], check=True)
    changed = 'msg="verdict cache changed by another process" cache.changed=1'
    assert wait_until(lambda: changed in milter.log(), timeout=30), milter.log()[-2000:]
    code, out = swaks(guarded.port, to="bob@example.test", source="127.0.0.6")
    assert "<** 550 5.7.1 Your host 127.0.0.6 was found to be an open relay" in out, out
    # A forgotten host goes from the running daemon too.
    subprocess.run([binary(), "cache", "forget", "127.0.0.6", "--config", str(milter.config_path)], check=True)
    assert wait_until(lambda: milter.log().count(changed) == 2, timeout=30), milter.log()[-2000:]
    code, out = swaks(guarded.port, to="bob@example.test", source="127.0.0.6")
    assert code == 0 and "open relay" not in out, out
    # Its own writes (the statistics, every 10 s) do not make it read anything again.
    time.sleep(12)
    assert milter.log().count(changed) == 2, milter.log()[-2000:]
    assert milter.log().count('msg="verdict cache loaded"') == 1, milter.log()[-2000:]
