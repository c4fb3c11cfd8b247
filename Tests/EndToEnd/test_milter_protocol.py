"""relay-milter over the milter protocol with no MTA: what a plain Postfix
can't easily produce. The client is our own small MTA-side implementation
(Scripts/mailharness/milterclient.py)."""
import pytest

from mailharness.milterclient import (ALL_ACTIONS, SMFIF_ADDHDRS, SMFIF_SETSYMLIST, SMFIP_NOBODY,
                                      SMFIP_NOEOH, SMFIP_NOHDRS, SMFIP_NOUNKNOWN, SMFIP_RCPT_REJ,
                                      MilterClient, reply_text)
from mailharness.relaymilter import config_text

CONTINUE = ("c", b"")


@pytest.fixture
def milter(start_milter):
    return start_milter(config_text(sections='[reply]\nreject_text = "no relaying to <{recipient}> from {client}"\n'))


@pytest.fixture
def client(milter):
    c = MilterClient(milter.address)
    c.negotiate()
    yield c
    c.close()


def test_negotiation_skips_unused_steps_and_asks_for_our_macros(milter):
    c = MilterClient(milter.address)
    actions, steps = c.negotiate()
    assert actions & SMFIF_ADDHDRS and actions & SMFIF_SETSYMLIST
    for flag in (SMFIP_NOHDRS, SMFIP_NOBODY, SMFIP_NOEOH, SMFIP_NOUNKNOWN, SMFIP_RCPT_REJ):
        assert steps & flag, hex(steps)
    assert c.symlists == {
        "connect": ["{client_addr}", "{daemon_name}", "v"],
        "mail": ["{auth_authen}", "{auth_type}", "{mail_addr}", "i"],
        "rcpt": ["{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}", "i"],
        "data": ["i"],
        "eom": ["i"],
    }
    c.close()


def test_an_mta_without_setsymlist_still_works(milter):
    c = MilterClient(milter.address)
    actions, _ = c.negotiate(actions=ALL_ACTIONS & ~SMFIF_SETSYMLIST)
    assert not actions & SMFIF_SETSYMLIST and c.symlists == {}
    assert c.connect("mx", "203.0.113.7") == CONTINUE
    assert c.mail("<a@b.example>") == CONTINUE
    assert c.rcpt("<x@elsewhere.example>")[0] == "y"
    c.close()
    # Such an MTA sends only the macros its own settings name: said once,
    # with the list it should name, however many connections come.
    again = MilterClient(milter.address)
    again.negotiate(actions=ALL_ACTIONS & ~SMFIF_SETSYMLIST)
    again.connect("mx", "203.0.113.8")
    again.close()
    assert milter.logged("did not take relay-milter's macro list", "{auth_authen}")
    assert milter.log().count("did not take relay-milter's macro list") == 1


def test_authenticated_client_may_relay(client, milter):
    assert client.connect("client.example", "203.0.113.7") == CONTINUE
    assert client.helo("client.example") is None  # the MTA need not wait at HELO
    assert client.mail("<alice@example.test>", macros={"{auth_authen}": "alice", "{auth_type}": "PLAIN"}) == CONTINUE
    assert client.rcpt("<friend@elsewhere.example>") == CONTINUE
    line = milter.decisions(at_least=1)[-1]
    assert "decision.reason=relay.authenticated" in line and "client.auth=alice" in line


def test_unauthenticated_relay_gets_our_custom_reply(client):
    client.connect("client.example", "203.0.113.7")
    client.mail("<ceo@example.test>")  # a forged local sender authorises nothing
    reply = client.rcpt("<victim@elsewhere.example>")
    assert reply[0] == "y"
    assert reply_text(reply) == "550 5.7.1 no relaying to <victim@elsewhere.example> from 203.0.113.7"


def test_multi_line_reply(start_milter):
    milter = start_milter(config_text(sections='[reply]\nreject_text = "<{recipient}>: relaying denied\\nSee https://example.test/relay"\n'),
                          name="multiline")
    c = MilterClient(milter.address)
    c.negotiate()
    c.connect("client.example", "203.0.113.7")
    c.mail("<a@b.example>")
    reply = c.rcpt("<x@elsewhere.example>")
    assert reply_text(reply) == "550-5.7.1 <x@elsewhere.example>: relaying denied\r\n550 5.7.1 See https://example.test/relay"
    c.close()


def test_client_addr_macro_wins_over_sockaddr(client, milter):
    # Postfix behind a proxy: the sockaddr is the proxy's, {client_addr} the client's.
    client.connect("proxy", "127.0.0.1", macros={"{client_addr}": "203.0.113.9"})
    client.mail("<a@b.example>")
    assert client.rcpt("<x@elsewhere.example>")[0] == "y"
    assert "client.address=203.0.113.9" in milter.decisions(at_least=1)[-1]


def test_unknown_address_family_is_untrusted_not_a_crash(client, milter):
    assert client.connect("unknown", address=None) == CONTINUE
    client.mail("<a@b.example>")
    assert client.rcpt("<x@elsewhere.example>")[0] == "y"
    assert client.rcpt("<bob@example.test>") == CONTINUE
    assert "client.address=unknown" in milter.decisions(at_least=2)[-1]


def test_ipv6_client(client, milter):
    client.connect("v6", "::1")
    client.mail("<a@b.example>")
    assert client.rcpt("<x@elsewhere.example>") == CONTINUE  # ::1/128 is trusted
    client.close()


def test_recipient_the_mta_rejected_is_counted_not_decided(client, milter):
    client.connect("client.example", "203.0.113.7")
    client.mail("<a@b.example>")
    reply = client.rcpt("<x@elsewhere.example>", macros={
        "{rcpt_mailer}": "error", "{rcpt_host}": "5.7.1", "{rcpt_addr}": "554 5.7.1 <x@elsewhere.example>: Relay access denied"})
    assert reply == CONTINUE
    assert "decision.reason=relay.mta_rejected" in milter.decisions(at_least=1)[-1]


def test_local_domain_through_a_remote_transport_is_refused(client, milter):
    client.connect("client.example", "203.0.113.7")
    client.mail("<a@b.example>")
    reply = client.rcpt("<bob@example.test>", macros={"{rcpt_mailer}": "smtp", "{rcpt_host}": "elsewhere.example"})
    assert reply[0] == "y"
    assert reply_text(reply) == "550 5.7.1 no relaying to <bob@example.test> from 203.0.113.7"
    assert "decision.reason=relay.mta_remote_transport" in milter.decisions(at_least=1)[-1]


def test_callbacks_out_of_order_do_not_crash(milter):
    # close before anything
    c = MilterClient(milter.address)
    c.negotiate()
    c.quit()
    c.close()
    # abort mid-message, then a fresh message on the same connection
    c = MilterClient(milter.address)
    c.negotiate()
    c.connect("client.example", "203.0.113.7")
    c.mail("<a@b.example>")
    assert c.rcpt("<x@elsewhere.example>")[0] == "y"
    c.abort()
    assert c.mail("<a@b.example>") == CONTINUE
    assert c.rcpt("<bob@example.test>") == CONTINUE
    # eom with no recipient accepted (all refused, as when the MTA goes on regardless)
    assert c.mail("<a@b.example>") == CONTINUE
    assert c.rcpt("<x@elsewhere.example>")[0] == "y"
    assert c.data() == CONTINUE
    assert c.eom() == (CONTINUE, [])
    c.quit()
    c.close()
    # commands libmilter's state machine refuses (eom with no DATA, rcpt with no
    # MAIL): libmilter answers nothing or drops the connection; we must survive
    for sequence in (("mail", "rcpt", "eom"), ("rcpt",), ("data",), ("eom",)):
        c = MilterClient(milter.address, timeout=2)
        c.negotiate()
        c.connect("client.example", "203.0.113.7")
        try:
            for step in sequence:
                {"mail": lambda: c.mail("<a@b.example>"), "rcpt": lambda: c.rcpt("<bob@example.test>"),
                 "data": c.data, "eom": c.eom}[step]()
        except (TimeoutError, ConnectionError):
            pass
        c.close()
    # the milter is still serving
    c = MilterClient(milter.address)
    c.negotiate()
    assert c.connect("client.example", "203.0.113.7") == CONTINUE
    c.close()
    assert milter.proc.poll() is None


def test_oversized_packet_drops_only_that_connection(milter):
    # libmilter refuses packets over its 64 KiB limit by closing the connection.
    c = MilterClient(milter.address, timeout=5)
    c.negotiate()
    try:
        c.connect("x" * 70000, "203.0.113.7")
    except (ConnectionError, TimeoutError):
        pass
    c.close()
    c = MilterClient(milter.address)
    c.negotiate()
    assert c.connect("client.example", "203.0.113.7") == CONTINUE
    c.close()
    assert milter.proc.poll() is None


def test_hostile_values(client, milter):
    client.connect(b"\xff\xfe" + b"x" * 8000, "203.0.113.7", macros={"{daemon_name}": b"\xff\xfe\x01bad"})
    client.helo(b"\xc3\x28 invalid utf-8")
    client.mail("<" + "a" * 60000 + "@b.example>")
    assert client.rcpt(b"<\xff@\x01\x02.example>")[0] == "y"
    assert client.rcpt(b"<\xff@example.test>") == CONTINUE
    for i in range(1000):
        assert client.rcpt(f"<user{i}@example.test>") == CONTINUE
    assert client.rcpt('<"a%b"@example.test>')[0] == "y"
    assert client.data() == CONTINUE
    assert client.eom() == (CONTINUE, [])
    assert milter.proc.poll() is None
    long_line = [l for l in milter.log().splitlines() if "client.name=" in l][0]
    assert len(long_line) < 2000  # untrusted text is truncated in logs


def test_tag_headers_are_added_at_end_of_message(start_milter):
    milter = start_milter(config_text(mode="tag-only"), name="tagging")
    c = MilterClient(milter.address)
    c.negotiate()
    c.connect("client.example", "203.0.113.7")
    c.mail("<a@b.example>")
    assert c.rcpt("<x@elsewhere.example>") == CONTINUE
    assert c.rcpt("<y%z@example.test>") == CONTINUE
    assert c.rcpt("<bob@example.test>") == CONTINUE
    assert c.data() == CONTINUE
    reply, headers = c.eom()
    assert reply == CONTINUE
    assert headers == [
        ("X-Relay-Milter", "reject; reason=relay.denied; rcpt=<x@elsewhere.example>; client=203.0.113.7"),
        ("X-Relay-Milter", "reject; reason=relay.routed_address; rcpt=<y%z@example.test>; client=203.0.113.7"),
    ]
    # the next message on the connection starts clean
    c.mail("<a@b.example>")
    c.rcpt("<bob@example.test>")
    assert c.eom() == (CONTINUE, [])
    c.close()


def test_an_mta_that_offers_no_header_changes_still_gets_decisions(start_milter):
    milter = start_milter(config_text(mode="tag-only"), name="no-headers")
    c = MilterClient(milter.address)
    actions, _ = c.negotiate(actions=SMFIF_SETSYMLIST)
    assert actions == SMFIF_SETSYMLIST
    c.connect("client.example", "203.0.113.7")
    c.mail("<a@b.example>")
    assert c.rcpt("<x@elsewhere.example>") == CONTINUE
    assert c.data() == CONTINUE
    reply, _ = c.eom()
    assert reply == CONTINUE
    assert milter.proc.poll() is None
    c.close()


def test_unix_socket_waives_replies_where_the_policy_only_records(start_milter, workdir):
    # Over a unix socket the MTA need not wait at HELO (SMFIP_NR_HELO), where relay-milter
    # only records, and need not send DATA at all (SMFIP_NODATA): its queue ID comes
    # again at end of message. CONNECT, MAIL, RCPT and end of message still answer.
    milter = start_milter(config_text(), name="unix", socket=f"unix:{workdir / 'unix' / 'milter.sock'}")
    c = MilterClient(milter.address)
    _, steps = c.negotiate()
    assert steps & 0x2000 and steps & 0x200 and not steps & 0x1000, hex(steps)
    assert c.connect("client.example", "203.0.113.7") == CONTINUE
    assert c.helo("client.example") is None
    assert c.mail("<a@outside.example>") == CONTINUE
    assert c.rcpt("<x@elsewhere.example>")[0] == "y"  # refused: still answered
    assert c.rcpt("<bob@example.test>") == CONTINUE
    assert c.eom()[0] == CONTINUE  # no DATA: the MTA skips it
    # A second message on the same connection, HELO again first (RSET and EHLO).
    assert c.helo("client.example") is None
    assert c.mail("<a@outside.example>") == CONTINUE
    c.close()
    assert milter.proc.poll() is None
    assert "decision.reason=relay.denied" in milter.decisions(at_least=1)[0]


def test_an_mta_that_offers_no_reply_waivers_gets_every_reply(start_milter, workdir):
    milter = start_milter(config_text(), name="unix", socket=f"unix:{workdir / 'unix' / 'milter.sock'}")
    c = MilterClient(milter.address)
    _, steps = c.negotiate(steps=0x1FFFFF & ~(0x2000 | 0x10000 | 0x200))
    assert not steps & (0x1000 | 0x2000 | 0x10000 | 0x200)
    assert c.connect("client.example", "203.0.113.7") == CONTINUE
    assert c.helo("client.example") == CONTINUE
    assert c.mail("<a@outside.example>") == CONTINUE
    assert c.rcpt("<bob@example.test>") == CONTINUE
    assert c.data() == CONTINUE
    c.close()


def test_an_mta_that_cannot_skip_data_need_not_wait_for_it(start_milter, workdir):
    milter = start_milter(config_text(), name="unix", socket=f"unix:{workdir / 'unix' / 'milter.sock'}")
    c = MilterClient(milter.address)
    _, steps = c.negotiate(steps=0x1FFFFF & ~0x200)
    assert steps & 0x10000 and not steps & 0x200, hex(steps)
    assert c.connect("client.example", "203.0.113.7") == CONTINUE
    assert c.mail("<a@outside.example>") == CONTINUE
    assert c.rcpt("<bob@example.test>") == CONTINUE
    assert c.data() is None
    assert c.eom()[0] == CONTINUE
    c.close()


def test_tcp_socket_waives_only_the_helo_reply(client, milter):
    # Over TCP a packet the MTA sends alone and unanswered leaves its next write to
    # Nagle. Postfix sends an unanswered HELO together with MAIL, but DATA alone (it
    # then hands the connection to its cleanup server), so only HELO goes unanswered.
    assert client.steps & 0x2000, hex(client.steps)
    assert not client.steps & (0x1000 | 0x10000 | 0x200), hex(client.steps)
    assert client.connect("client.example", "203.0.113.7") == CONTINUE
    assert client.helo("helo.client.example") is None
    assert client.mail("<a@outside.example>") == CONTINUE
    assert client.rcpt("<bob@example.test>") == CONTINUE
    assert client.data() == CONTINUE
    # HELO was received though not answered: its name is in the decision line.
    assert "helo.client.example" in milter.decisions(at_least=1)[-1]


def test_a_client_that_hangs_up_at_once_is_still_queued_for_a_test(start_milter, workdir):
    # CONNECT keeps its reply even over a unix socket: libmilter drops commands it
    # has not read when the MTA hangs up, and a hit-and-run client must still be seen.
    milter = start_milter(config_text(sections='[probe]\nallow_loopback = true\nport = 9\nnetwork_interval = 0\n'),
                          name="unix", socket=f"unix:{workdir / 'unix' / 'milter.sock'}")
    for i in range(5):
        c = MilterClient(milter.address)
        c.negotiate()
        assert c.connect("scanner.example", f"127.1.9.{i + 1}") == CONTINUE
        c.quit()
        c.close()
    from mailharness.ports import wait_until
    assert wait_until(lambda: milter.log().count("open-relay test finished") >= 5, timeout=30), milter.log()[-2000:]
