"""relay-milter inside a real Sendmail (Debian's binary, unpacked beside
the Postfix the other suites use; see Scripts/install-sendmail), attached
with the shipped Config/sendmail/relay-milter.m4. Sendmail here lets all of
127.0.0.0/8 relay (RELAY_DOMAIN(`127')), so its own check, which runs before
the milter, would relay for 127.0.0.2; relay-milter trusts only 127.0.0.1
and must stop it. The same cases as the Postfix suite."""
import signal
import time

import pytest

from mailharness.nmap import nmap_open_relay
from mailharness.ports import wait_until
from mailharness.relaymilter import config_text
from mailharness.swaks import swaks

UNTRUSTED = "127.0.0.2"
TRUSTED = "127.0.0.1"


def settled(sendmail):
    assert sendmail.wait_queue_empty(), f"queue not empty: {sendmail.queue_ids()}\n{sendmail.log()[-2000:]}"


def test_local_recipient_is_delivered(start_milter, start_sendmail, sink):
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    code, out = swaks(sendmail.port, to="bob@example.test", source=UNTRUSTED, header="Subject: for bob")
    assert code == 0, out
    assert wait_until(lambda: sendmail.delivered_to("bob")), sendmail.log()
    settled(sendmail)
    [message] = sendmail.delivered_to("bob")
    assert "Subject: for bob" in message and "X-Relay-Milter" not in message
    assert sink.recipients() == []
    line = milter.decisions(at_least=1)[0]
    # Sendmail's local mailer: {rcpt_mailer} is "local", {rcpt_addr} just the user.
    assert "decision.reason=relay.local_recipient" in line and "mta.transport=local" in line, line


def test_relay_from_untrusted_client_is_refused_with_our_text(start_milter, start_sendmail, sink):
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    code, out = swaks(sendmail.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code != 0
    assert "<** 550 5.7.1 <victim@elsewhere.example>... <victim@elsewhere.example>: Relay access denied (relay.denied)" in out, out
    time.sleep(1.5)  # give a wrongly queued message time to reach the sink
    settled(sendmail)
    assert sink.recipients() == [] and sendmail.delivered() == []
    line = milter.decisions(at_least=1)[0]
    for field in ("client.address=127.0.0.2", "decision.action=reject", "decision.reason=relay.denied",
                  "mail.rcpt=<victim@elsewhere.example>", "mta.transport=relay"):
        assert field in line, line
    if sendmail.logs.owned:
        assert "Milter: to=<victim@elsewhere.example>, reject=550 5.7.1" in sendmail.log()


def test_routing_tricks_are_refused_through_sendmail(start_milter, start_sendmail, sink):
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    # Sendmail itself would pass these on: the percent hack it routes through
    # the relay mailer to the host after the percent sign.
    tricks = ["relaytest%nmap.scanme.org@example.test", "nmap.scanme.org!relaytest@example.test",
              '"relaytest@nmap.scanme.org"@example.test']
    for rcpt in tricks:
        code, out = swaks(sendmail.port, to=rcpt, source=UNTRUSTED)
        assert code != 0, out
        assert f"<** 550 5.7.1 <{rcpt}>... <{rcpt}>: Relay access denied (relay.routed_address)" in out, out
    decisions = milter.decisions(at_least=3)
    assert "mta.transport=relay" in decisions[0], decisions[0]
    # This one Sendmail refuses as a syntax error, before any milter hears of it.
    code, out = swaks(sendmail.port, to="relaytest@nmap.scanme.org@example.test", source=UNTRUSTED)
    assert "<** 553 5.1.3" in out, out
    time.sleep(1.5)
    settled(sendmail)
    assert sink.recipients() == [] and sendmail.delivered() == []


def test_relay_from_trusted_network_reaches_the_sink(start_milter, start_sendmail, sink):
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    code, out = swaks(sendmail.port, to="friend@elsewhere.example", source=TRUSTED)
    assert code == 0, out
    assert wait_until(lambda: sink.recipients() == ["<friend@elsewhere.example>"]), sink.text() + sendmail.log()
    assert "decision.reason=relay.trusted_network" in milter.decisions(at_least=1)[0]


def test_tag_only_mode_delivers_with_our_header(start_milter, start_sendmail, sink):
    milter = start_milter(config_text(mode="tag-only"))
    sendmail = start_sendmail(milter=milter.socket)
    code, out = swaks(sendmail.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code == 0, out
    assert wait_until(lambda: sink.recipients() == ["<victim@elsewhere.example>"]), sink.text() + sendmail.log()
    assert ("X-Relay-Milter: reject; reason=relay.denied; rcpt=<victim@elsewhere.example>; client=127.0.0.2"
            in sink.text()), sink.text()


def test_milter_down_means_tempfail_and_nothing_lost(start_milter, start_sendmail, sink):
    """F=T in the shipped fragment: with relay-milter gone, Sendmail tempfails."""
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    assert milter.stop() == 0
    for rcpt, source in (("bob@example.test", UNTRUSTED), ("friend@elsewhere.example", TRUSTED)):
        code, out = swaks(sendmail.port, to=rcpt, source=source)
        assert code != 0, out
        assert "<** 451 4.3.2" in out or "<** 421 4.3.0" in out or "<** 421 4.7.0" in out, out
    time.sleep(1.5)
    settled(sendmail)
    assert sink.recipients() == [] and sendmail.delivered() == []
    # Back up: the client's retries go through; nothing was lost.
    start_milter(config_text(), name="milter2", socket=milter.socket)
    assert swaks(sendmail.port, to="bob@example.test", source=UNTRUSTED)[0] == 0
    assert swaks(sendmail.port, to="friend@elsewhere.example", source=TRUSTED)[0] == 0
    assert wait_until(lambda: sink.recipients() == ["<friend@elsewhere.example>"])
    assert wait_until(lambda: len(sendmail.delivered_to("bob")) == 1)


def test_sighup_reloads_under_sendmail(start_milter, start_sendmail, sink):
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket)
    milter.write_config(config_text(mode="tag-only"))
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: 'msg="config reloaded"' in milter.log())
    assert swaks(sendmail.port, to="victim@elsewhere.example", source=UNTRUSTED)[0] == 0
    assert wait_until(lambda: "X-Relay-Milter: reject" in sink.text())


SUSPECT = "127.0.0.3"


def test_open_relay_host_is_found_then_refused(start_milter, start_sendmail, sink):
    """The suspect is itself a Sendmail, an open relay by FEATURE(`promiscuous_relay'),
    on 127.0.0.3; it then sends mail from there into the guarded Sendmail."""
    suspect = start_sendmail(name="suspect", listen=SUSPECT, features=("promiscuous_relay",))
    milter = start_milter(config_text(sections=(
        '[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
        f'port = {suspect.port}\nsource_address = "127.0.0.4"\nnetwork_interval = 0\ncommand_timeout = 5\n')))
    guarded = start_sendmail(name="guarded", milter=milter.socket)

    code, out = swaks(guarded.port, to="bob@example.test", source=SUSPECT)
    assert code == 0, out  # unknown yet: accepted, and tested in the background
    tested = lambda: [l for l in milter.log().splitlines() if 'msg="open-relay test finished"' in l]
    assert wait_until(tested, timeout=60), milter.log()
    assert f"client.address={SUSPECT}" in tested()[0] and "probe.verdict=open" in tested()[0], tested()[0]

    code, out = swaks(guarded.port, to="bob@example.test", source=SUSPECT)
    assert code != 0
    # Sendmail puts the address in front of the milter's text.
    assert f"<** 550 5.7.1 <sender@elsewhere.example>... Your host {SUSPECT} was found to be an open relay on" in out, out
    assert len(guarded.delivered_to("bob")) == 1
    # The test sent no message: the open relay passed nothing on.
    assert sink.recipients() == [] and suspect.delivered() == [] and suspect.queue_ids() == []


def test_nmap_finds_a_promiscuous_sendmail_open_on_its_own(start_sendmail):
    bare = start_sendmail(name="open-relay", features=("promiscuous_relay",))
    verdict = nmap_open_relay(bare.port)
    assert verdict.startswith("Server is an open relay"), verdict


@pytest.mark.parametrize("socket_kind", ["inet", "unix"])
def test_nmap_finds_a_promiscuous_sendmail_closed_with_relay_milter(start_milter, start_sendmail, sink, socket_kind):
    milter = start_milter(config_text(), unix=socket_kind == "unix")
    guarded = start_sendmail(name="guarded", features=("promiscuous_relay",), milter=milter.socket)
    verdict = nmap_open_relay(guarded.port)
    assert "doesn't seem to be an open relay" in verdict, verdict
    decisions = milter.decisions(at_least=10)
    assert all("client.address=127.0.0.2" in line for line in decisions)
    assert any("decision.action=reject" in line for line in decisions)
    assert sink.recipients() == [] and guarded.delivered() == []


def test_relay_local_from_lets_a_forged_local_sender_relay_but_not_past_relay_milter(start_milter, start_sendmail, sink):
    """FEATURE(`relay_local_from'): Sendmail relays for any MAIL FROM in a local
    domain, which anyone can forge. Sendmail here trusts no network."""
    forged = "ceo@example.test"
    bare = start_sendmail(name="bare", relay_networks=(), features=("relay_local_from",))
    code, out = swaks(bare.port, to="victim@elsewhere.example", sender=forged, source=UNTRUSTED)
    assert code == 0, out  # Sendmail alone relays it
    assert wait_until(lambda: sink.recipients() == ["<victim@elsewhere.example>"]), sink.text()

    milter = start_milter(config_text())
    guarded = start_sendmail(name="guarded", relay_networks=(), features=("relay_local_from",), milter=milter.socket)
    code, out = swaks(guarded.port, to="victim2@elsewhere.example", sender=forged, source=UNTRUSTED)
    assert code != 0
    assert "<** 550 5.7.1 <victim2@elsewhere.example>... <victim2@elsewhere.example>: Relay access denied (relay.denied)" in out, out
    time.sleep(1.5)
    settled(guarded)
    assert sink.recipients() == ["<victim@elsewhere.example>"]


def test_sendmails_own_relay_refusal_comes_first(start_milter, start_sendmail, sink):
    """A stock Sendmail (no network may relay) refuses relaying itself, before
    the milter is asked. relay-milter asks to see refused recipients too
    (SMFIP_RCPT_REJ), but Debian's Sendmail is built without the option that
    honours that: the recipient never reaches relay-milter."""
    milter = start_milter(config_text())
    sendmail = start_sendmail(relay_networks=(), milter=milter.socket)
    code, out = swaks(sendmail.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert "<** 550 5.7.1 <victim@elsewhere.example>... Relaying denied" in out, out
    assert swaks(sendmail.port, to="bob@example.test", source=UNTRUSTED)[0] == 0
    [line] = milter.decisions(at_least=1)
    assert "mail.rcpt=<bob@example.test>" in line, line
    assert sink.recipients() == []
