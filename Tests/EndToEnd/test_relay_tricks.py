"""Relay tricks end to end, through a Postfix that is itself an open relay
(mynetworks = 0.0.0.0/0). The bare Postfix lets tricks through to the
smtp-sink that stands for the rest of the Internet; with relay-milter attached
none may get through, and every trick the bare Postfix relayed is refused by
relay-milter with its own text. The same spellings aimed at a local mailbox
are still delivered. The policy-level list is Tests/RelayPolicyTests/RelayTrickTests.swift."""
import time

from mailharness.relaymilter import config_text
from mailharness.smtpclient import attempt

UNTRUSTED = "127.0.0.2"

# Every one of these names a host other than ours (example.test at mx.example.test).
TRICKS = [
    "<@a.example,@mx.example.test:relaytest@evil.example>",
    "<@mx.example.test, @[127.0.0.1]:relaytest@evil.example>",
    "<relaytest@evil.example.>",
    "<RelayTest@EVIL.Example>",
    "<RELAYTEST%EVIL.EXAMPLE@MX.EXAMPLE.TEST>",
    "<relaytest%evil.example@example.test.>",
    "<EVIL.EXAMPLE!RelayTest@Example.Test>",
    "<relaytest\\%evil.example@example.test>",
    '<"relaytest\\@evil.example"@example.test>',
    '<"relaytest@evil.example"@example.test>',
    "<relaytest@evil.example@example.test>",
    "<relaytest@example.test.evil.example>",
    "<relaytest@evilexample.test>",
    "<relaytest@sub.example.test>",
    "<relaytest@[192.0.2.50]>",
    "<relaytest@[IPv6:2001:db8::1]>",
    "<relaytest@bücher.evil>",
    "<relaytest@xn--bcher-kva.evil>",
    "<δοκιμή@evil.example>",
    "<δοκιμή%evil.example@example.test>",
    "<relaytest@ex\u0430mple.test>",
    "<  relaytest@evil.example  >",
    "<relaytest@evil.example (via example.test)>",
    "relaytest@evil.example",
    '<"relay test"@evil.example>',
]

# The same spellings aimed at a local mailbox.
LOCAL = ["<Bob@EXAMPLE.TEST>", "<bob@example.test.>", "<δοκιμή@example.test>", "<  bob@example.test >"]


def run_all(port, recipients):
    return {rcpt: attempt(port, rcpt, source=UNTRUSTED) for rcpt in recipients}


def settle(postfix):
    time.sleep(1.5)  # give relayed mail time to leave the queue
    assert postfix.wait_queue_empty(), f"queue not empty:\n{postfix.log()[-2000:]}"


def test_no_trick_relays_through_an_open_relay_with_relay_milter(start_milter, start_postfix, sink):
    bare = start_postfix(name="open-relay", mynetworks="0.0.0.0/0")
    bare_results = run_all(bare.port, TRICKS)
    settle(bare)
    relayed_by_bare = [rcpt for rcpt, (code, _, data) in bare_results.items() if code == 250 and data == 250]
    # The bare open relay must really pass them, or this test proves nothing.
    assert relayed_by_bare == TRICKS, bare_results
    sink_before = len(sink.recipients())
    assert sink_before > 0

    milter = start_milter(config_text())
    guarded = start_postfix(name="guarded", mynetworks="0.0.0.0/0", milter=milter.postfix_spec)
    guarded_results = run_all(guarded.port, TRICKS)
    settle(guarded)

    accepted = {rcpt: result for rcpt, result in guarded_results.items() if result[0] < 400}
    assert not accepted, accepted
    assert len(sink.recipients()) == sink_before, sink.recipients()[sink_before:]
    assert guarded.delivered() == []
    for rcpt in relayed_by_bare:
        code, text, _ = guarded_results[rcpt]
        assert code == 550 and "Relay access denied (relay." in text, (rcpt, code, text)
    refused = [line for line in milter.decisions(at_least=len(relayed_by_bare)) if "decision.action=reject" in line]
    assert len(refused) >= len(relayed_by_bare), "\n".join(milter.decisions())
    assert all("client.address=127.0.0.2" in line for line in milter.decisions())


def test_local_spellings_are_still_delivered(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    guarded = start_postfix(name="guarded", mynetworks="0.0.0.0/0", milter=milter.postfix_spec)
    results = run_all(guarded.port, LOCAL)
    settle(guarded)
    assert all(code == 250 and data == 250 for code, _, data in results.values()), results
    assert len(guarded.delivered()) == len(LOCAL)
    assert sink.recipients() == []
    decisions = milter.decisions(at_least=len(LOCAL))
    assert len(decisions) == len(LOCAL) and all("decision.reason=relay.local_recipient" in line for line in decisions), decisions
