"""Registered relay tests end to end: `relay-milter probe --registered` relays
one message through a real Postfix the admin answers for, which sends it on
to the real Postfix relay-milter serves; the daemon sees it come back, keeps
the proof, and discards it. Everything on loopback."""
import json
import re
import subprocess

from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import binary, cached_verdicts, config_text
from mailharness.swaks import swaks

TESTED = "127.0.0.5"  # the host under test: listens here and relays from here


def registered_config(window="5m", networks=(f"{TESTED}/32",)):
    return config_text(sections=(
        "[registered]\nenabled = true\n"
        "networks = [" + ", ".join(f'"{n}"' for n in networks) + "]\n"
        f'window = "{window}"\n'
        # The message leaves from 127.0.0.2, outside the closed Postfix's mynetworks;
        # no anonymous tests here.
        '[probe]\nenabled = false\nsource_address = "127.0.0.2"\n'))


def start_tested(start_postfix, home, port=None, **extra):
    """A Postfix on 127.0.0.5 that relays for anyone (mynetworks 0/0), handing
    mail for other domains to `home`, the Postfix relay-milter serves."""
    settings = {"relayhost": f"[127.0.0.1]:{home.port}", "smtp_bind_address": TESTED}
    settings.update(extra)
    return start_postfix(name="tested", listen=TESTED, port=port, mynetworks="0.0.0.0/0", local_domain="tested.example",
                         hostname="mx.tested.example", extra=settings)


def probe_registered(milter, target, *args):
    return subprocess.run([binary(), "probe", "--registered", "--config", str(milter.config_path), *args, target],
                          capture_output=True, text=True, timeout=300)


def test_a_relay_that_delivers_is_confirmed_open_and_nothing_reaches_a_mailbox(start_milter, start_postfix, sink):
    milter = start_milter(registered_config())
    home = start_postfix(milter=milter.postfix_spec)
    tested = start_tested(start_postfix, home)
    result = probe_registered(milter, f"{TESTED}:{tested.port}")
    assert result.returncode == 0, result.stderr
    assert "Result: open, confirmed by delivery: the message came back from 127.0.0.5" in result.stdout, result.stdout + result.stderr
    # The hops it came through, as Postfix hands them to a milter: the tested host's, not its own.
    hops = [line for line in result.stdout.splitlines() if line.startswith("  Received: ")]
    assert len(hops) == 1 and "by mx.tested.example (Postfix)" in hops[0], result.stdout
    verdict = {v["host"]: v for v in cached_verdicts(milter.config_path)}[TESTED]
    assert verdict["verdict"] == "open" and verdict["source"] == "registered", verdict
    shown = subprocess.run([binary(), "cache", "show", TESTED, "--config", str(milter.config_path)],
                           capture_output=True, text=True, check=True).stdout
    assert "registered test " in shown and ": delivered (250 " in shown and "came back from 127.0.0.5" in shown, shown
    assert "  Received: " in shown, shown
    assert milter.logged('msg="registered test confirmed"'), milter.log()
    assert milter.metrics()[("relay_milter_registered_tests_total", frozenset({("outcome", "delivered")}))] == 1
    # Discarded by the milter: the home Postfix delivered nothing.
    assert wait_until(lambda: "milter-discard" in home.log(), timeout=10), home.log()[-2000:]
    assert not any(home.mail_dir.rglob("inbox/new/*")), list(home.mail_dir.rglob("*"))
    assert sink.recipients() == []
    # The tested host was sent one message, the fixed one from the alias domain's postmaster.
    assert messages_taken(tested) == ["postmaster@example.test"], tested.log()[-3000:]


def test_a_relay_that_discards_is_accepted_undelivered(start_milter, start_postfix, sink):
    """A host that takes the message and throws it away (a discard transport):
    anonymous mode's false positive, told apart when the window ends."""
    milter = start_milter(registered_config(window="1m"))
    home = start_postfix(milter=milter.postfix_spec)
    tested = start_tested(start_postfix, home, transport_maps="inline:{ example.test=discard: }")
    result = probe_registered(milter, f"{TESTED}:{tested.port}", "--wait", "5s")
    assert result.returncode == 0, result.stderr
    assert "not back yet" in result.stdout, result.stdout
    verdicts = lambda: {v["host"]: v["verdict"] for v in cached_verdicts(milter.config_path)}
    assert wait_until(lambda: verdicts().get(TESTED) == "accepted_undelivered", timeout=90), verdicts()
    assert milter.logged('msg="registered test undelivered"')
    assert milter.metrics()[("relay_milter_registered_tests_total", frozenset({("outcome", "undelivered")}))] == 1
    # It never came: nothing reached the home Postfix to be discarded.
    assert "milter-discard" not in home.log(), home.log()[-1000:]
    # The alias is dead after its window: a message for it, even from the tested host, is refused at RCPT.
    alias = re.search(r"^Alias: (\S+)$", result.stdout, re.M).group(1)
    code, out = swaks(home.port, to=alias, source=TESTED)
    assert "550 5.1.1" in out and "unknown or expired test address" in out, out
    assert milter.metrics()[("relay_milter_registered_aliases_refused_total", frozenset())] == 1


def test_a_closed_host_refuses_and_a_stranger_is_never_sent_anything(start_milter, start_postfix, sink):
    milter = start_milter(registered_config())
    home = start_postfix(milter=milter.postfix_spec)
    closed = start_postfix(name="closed", listen=TESTED, mynetworks="127.0.0.1/32", local_domain="tested.example",
                           hostname="mx.tested.example")
    result = probe_registered(milter, f"{TESTED}:{closed.port}")
    assert result.returncode == 0, result.stderr
    assert "Result: refused (at rcpt: 554 5.7.1" in result.stdout, result.stdout
    as_json = json.loads(probe_registered(milter, f"{TESTED}:{closed.port}", "--json").stdout)
    assert as_json["state"] == "refused" and as_json["host"] == TESTED and as_json["alias"].startswith("relay-check+"), as_json
    # A host outside [registered] networks: refused before any connection.
    connections = home.log().count("connect from")
    stranger = probe_registered(milter, f"127.0.0.1:{home.port}")
    assert stranger.returncode != 0 and "is not in [registered] networks" in stranger.stderr
    assert home.log().count("connect from") == connections, home.log()[-1000:]
    assert sink.recipients() == []


def test_a_guessed_token_is_refused(start_milter, start_postfix, sink):
    milter = start_milter(registered_config())
    home = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(home.port, to="relay-check+aaaaaaaaaaaaaaaaaaaaaaaaaa@example.test", source="127.0.0.2")
    assert "550 5.1.1" in out and "unknown or expired test address" in out, out
    assert milter.metrics()[("relay_milter_registered_aliases_refused_total", frozenset())] == 1


def test_an_arrival_after_a_restart_in_the_window_still_counts(start_milter, start_postfix, sink):
    """The tested host holds the message (defer_transports) while relay-milter
    restarts; when it is let go, the restarted daemon matches it."""
    milter = start_milter(registered_config())
    home = start_postfix(milter=milter.postfix_spec)
    tested = start_tested(start_postfix, home, defer_transports="smtp")
    result = probe_registered(milter, f"{TESTED}:{tested.port}", "--wait", "2s")
    assert result.returncode == 0 and "not back yet" in result.stdout, result.stdout + result.stderr
    assert milter.stop() == 0
    milter.start()
    subprocess.run(["postqueue", "-c", str(tested.config_dir), "-f"], check=True, capture_output=True)
    verdicts = lambda: {v["host"]: (v["verdict"], v["source"]) for v in cached_verdicts(milter.config_path)}
    assert wait_until(lambda: verdicts().get(TESTED) == ("open", "registered"), timeout=30), verdicts()
    assert wait_until(lambda: "milter-discard" in home.log(), timeout=10)


def messages_taken(postfix):
    """The senders of the messages a Postfix queued, from its log."""
    return re.findall(r"qmgr\[\d+\]: \w+: from=<([^>]*)>", postfix.log())


def test_the_daemon_settles_an_unconfirmed_host_it_answers_for_and_never_sends_a_stranger_anything(
        start_milter, start_postfix, sink):
    """Anonymous tests without DATA leave two open relays `open_unconfirmed`:
    the one in [registered] networks gets the one test message, which comes
    back and makes it `open`; the other gets nothing."""
    stranger_address = "127.0.0.6"
    port = free_port(TESTED)  # [probe] port is one for all: both tested hosts listen on it
    milter = start_milter(config_text(sections=(
        f'[registered]\nenabled = true\nnetworks = ["{TESTED}/32"]\n'
        f'[probe]\nallow_loopback = true\nconfirm_with_data = false\nsource_address = "127.0.0.2"\nport = {port}\n'
        "command_timeout = 3\nconnect_timeout = 3\n"
        "network_interval = 0\n")))  # both hosts are in one /24
    home = start_postfix(milter=milter.postfix_spec)
    tested = start_tested(start_postfix, home, port=port)
    stranger = start_postfix(name="stranger", listen=stranger_address, port=port, mynetworks="0.0.0.0/0",
                             local_domain="stranger.example", hostname="mx.stranger.example",
                             extra={"relayhost": f"[127.0.0.1]:{home.port}", "smtp_bind_address": stranger_address})
    verdicts = lambda: {v["host"]: (v["verdict"], v["source"]) for v in cached_verdicts(milter.config_path)}
    # The stranger first: its anonymous test is over (and its follow-up decided) long before
    # the tested host's message has made its round trip.
    swaks(home.port, to="someone@example.test", source=stranger_address)
    assert wait_until(lambda: verdicts().get(stranger_address) == ("open_unconfirmed", "probe"), timeout=60), verdicts()
    swaks(home.port, to="someone@example.test", source=TESTED)
    assert wait_until(lambda: verdicts().get(TESTED) == ("open", "registered"), timeout=60), verdicts()
    assert milter.logged('msg="registered test sent"', 'msg="registered test confirmed"'), milter.log()[-3000:]
    assert "registered.anonymous_verdict=open_unconfirmed" in milter.log()
    assert wait_until(lambda: "milter-discard" in home.log(), timeout=10), home.log()[-2000:]
    # The tested host took one message, the fixed one from the alias domain's postmaster;
    # the anonymous tests before it queued nothing. The stranger took nothing at all.
    assert messages_taken(tested) == ["postmaster@example.test"], tested.log()[-3000:]
    assert messages_taken(stranger) == [] and "message-id=" not in stranger.log(), stranger.log()[-3000:]
    assert verdicts()[stranger_address] == ("open_unconfirmed", "probe")
    stats = subprocess.run([binary(), "stats", "--config", str(milter.config_path), "--json"],
                           capture_output=True, text=True, check=True)
    assert json.loads(stats.stdout)["registeredTests"] == {"delivered": 1}, stats.stdout
    text = subprocess.run([binary(), "stats", "--config", str(milter.config_path)], capture_output=True, text=True, check=True).stdout
    assert "registered tests started in the window: 1 test(s) (delivered 1)" in text, text


def test_through_sendmail_the_message_comes_back_and_is_discarded(start_milter, start_sendmail, start_postfix, sink):
    """The same loop with Sendmail as the MTA relay-milter serves: Sendmail
    hands the test message's headers to the milter and honours its DISCARD
    at the end of the message."""
    milter = start_milter(registered_config())
    home = start_sendmail(milter=milter.socket)
    tested = start_tested(start_postfix, home)
    result = probe_registered(milter, f"{TESTED}:{tested.port}")
    assert result.returncode == 0, result.stderr
    assert "Result: open, confirmed by delivery: the message came back from 127.0.0.5" in result.stdout, \
        result.stdout + result.stderr + milter.log()[-2000:] + home.log()[-2000:]
    # Sendmail, like Postfix, hands the milter the tested host's hop, not its own.
    hops = [line for line in result.stdout.splitlines() if line.startswith("  Received: ")]
    assert len(hops) == 1 and "by mx.tested.example (Postfix)" in hops[0], result.stdout
    verdict = {v["host"]: v for v in cached_verdicts(milter.config_path)}[TESTED]
    assert verdict["verdict"] == "open" and verdict["source"] == "registered", verdict
    assert wait_until(lambda: "discard" in home.log().lower(), timeout=10), home.log()[-2000:]
    assert home.delivered() == [] and sink.recipients() == []
