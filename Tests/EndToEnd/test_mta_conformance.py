"""The conformance matrix: every way mail reaches a production MX, driven
through the real MTA with a real client (swaks, smtplib, smtp-source,
sendmail(1)), never our own milter client, with the MTA at its default
settings except what the row is about (Postfix's error limits and sleeps
included). For each row: a local recipient is accepted, a relay from an
untrusted client is refused, one from a trusted client passes, and the
decision log names the true client address.

What the MTAs really send, as seen here, is what MTAMacros reads; its unit
tests hold the same forms. A row one MTA cannot do is skipped for it, with
the reason."""
import re
import shutil
import subprocess
import time

import pytest

from mailharness import sendmail
from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import cached_verdicts, config_text
from mailharness.swaks import swaks

V6 = "::1"


def decision_for(milter, rcpt):
    """The last decision line for `rcpt` (waiting for the log writer). SMTP
    recipients come in brackets; Postfix's cleanup gives non-SMTP ones bare."""
    def found():
        return [line for line in milter.decisions() if field(line, "mail.rcpt") in (f"<{rcpt}>", rcpt)]
    assert wait_until(found), f"no decision for {rcpt}:\n" + milter.log()[-3000:]
    return found()[-1]


def field(line, name):
    match = re.search(rf"(?:^| ){re.escape(name)}=(\"[^\"]*\"|\S+)", line)
    return match.group(1).strip('"') if match else None


def only(mta, reason):
    """A row one MTA alone can do: the other's case is skipped, saying why."""
    other = "sendmail" if mta == "postfix" else "postfix"
    return pytest.mark.parametrize("mta", [mta, pytest.param(other, marks=pytest.mark.skip(reason=reason))])


def check_the_row(milter, sink, port, *, untrusted, trusted, proof=""):
    """The points of every row, through `port`: a relay from `untrusted` is
    refused with our text and its decision names it; a local recipient from
    it is accepted; a relay from `trusted` is relayed, named as trusted.
    `proof` (the MTA's log, say) is shown when a point fails."""
    code, out = swaks(port, source=untrusted, to="friend@faraway.example")
    assert "Relay access denied (relay.denied)" in out, out + proof
    assert field(decision_for(milter, "friend@faraway.example"), "client.address") == untrusted
    assert swaks(port, source=untrusted, to="bob@example.test")[0] == 0
    code, out = swaks(port, source=trusted, to="friend2@faraway.example")
    assert code == 0, out
    line = decision_for(milter, "friend2@faraway.example")
    assert field(line, "client.address") == trusted and field(line, "decision.reason") == "relay.trusted_network", line
    assert wait_until(lambda: sink.recipients() == ["<friend2@faraway.example>"])


# --- IPv6 -------------------------------------------------------------------

def v6_postfix(start_postfix, milter, **kwargs):
    """Postfix on [::1] at its defaults; like the IPv4 suite's, it trusts all
    of loopback itself (mynetworks), so relay-milter alone decides."""
    return start_postfix(listen=V6, mynetworks="127.0.0.0/8 [::1]/128", milter=milter.postfix_spec,
                         relaxed_limits=False, **kwargs)


def test_ipv6_trusted_client_relays_and_the_log_names_it(start_milter, start_postfix, sink):
    milter = start_milter(config_text(trusted=("127.0.0.1/32", "::1/128")))
    postfix = v6_postfix(start_postfix, milter)
    code, out = swaks(postfix.port, server=V6, source=V6, to="friend@faraway.example")
    assert code == 0, out + postfix.log()[-2000:]
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"]), postfix.log()[-2000:]
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "client.address") == "::1", line
    assert field(line, "decision.reason") == "relay.trusted_network", line
    # Postfix's own spelling of the client, which relay-milter reads: in its log.
    assert "client=localhost[::1]" in postfix.log() or "client=unknown[::1]" in postfix.log()


def test_ipv6_untrusted_client_is_refused_and_a_local_recipient_accepted(start_milter, start_postfix, sink):
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    postfix = v6_postfix(start_postfix, milter)
    code, out = swaks(postfix.port, server=V6, source=V6, to="friend@faraway.example")
    assert "<** 550 5.7.1 <friend@faraway.example>: Relay access denied (relay.denied)" in out, out
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "client.address") == "::1" and field(line, "decision.action") == "reject", line

    code, out = swaks(postfix.port, server=V6, source=V6, to="bob@example.test")
    assert code == 0, out
    line = decision_for(milter, "bob@example.test")
    assert field(line, "client.address") == "::1" and field(line, "decision.reason") == "relay.local_recipient", line
    assert wait_until(lambda: len(postfix.delivered()) == 1)
    time.sleep(1)
    assert sink.recipients() == []
    # Known, not unidentified: nothing counted as an unknown client.
    metrics = milter.metrics()
    assert metrics[("relay_milter_clients_unidentified_total", frozenset({("cause", "unparsable")}))] == 0
    assert metrics[("relay_milter_clients_unidentified_total", frozenset({("cause", "absent")}))] == 0


def test_ipv6_host_is_tested_then_refused_as_an_open_relay(start_milter, start_postfix, sink):
    """The suspect is a real Postfix, an open relay on [::1]; mail from ::1
    makes relay-milter test ::1 itself (the prober over IPv6), cache `open`,
    and refuse the host at MAIL FROM from then on."""
    suspect = start_postfix(name="suspect", listen=V6, mynetworks="0.0.0.0/0 [::]/0", relaxed_limits=False)
    milter = start_milter(config_text(trusted=("127.0.0.1/32",), sections=(
        '[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
        f'port = {suspect.port}\nnetwork_interval = 0\ncommand_timeout = 5\n')))
    # A connection from ::1 queues the test (at its first MAIL, where the MTA
    # says whether the client authenticated, or at its end if it had none: the
    # harness's own check that Postfix listens); a session never waits for it.
    guarded = v6_postfix(start_postfix, milter, name="guarded")
    finished = lambda: [l for l in milter.log().splitlines() if 'msg="open-relay test finished"' in l]
    assert wait_until(finished, timeout=90), milter.log()[-3000:]
    assert field(finished()[0], "client.address") == "::1" and "probe.verdict=open" in finished()[0], finished()[0]
    [record] = cached_verdicts(milter.config_path)
    assert record["host"] == "::1" and record["verdict"] == "open", record

    code, out = swaks(guarded.port, server=V6, source=V6, to="carol@example.test")
    assert "<** 550 5.7.1 Your host ::1 was found to be an open relay on" in out, out
    assert milter.logged('msg="host decision"', "decision.reason=host.open_relay")
    # The prober never sent a message: the open relay delivered nothing.
    assert sink.recipients() == []


@pytest.fixture
def ipv6_link():
    """A namespace holding 2001:db8:25::2, joined to this host's 2001:db8:25::1."""
    from mailharness.netns import IPv6Link
    link = IPv6Link().start()
    yield link
    link.stop()


def swaks_in(link, port, *, to, extra=()):
    """swaks run inside the namespace, from its global address to the host's."""
    result = link.run(["swaks", "--server", link.host_address, "--port", str(port), "--local-interface",
                       link.peer_address, "--to", to, "--from", "sender@elsewhere.example", "--helo", "client.example",
                       "--timeout", "20", *extra], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("mta", ["postfix", "sendmail"])
@pytest.mark.parametrize("trusted,reason", [(("127.0.0.1/32", "2001:db8:25::/64"), "relay.trusted_network"),
                                            (("127.0.0.1/32",), "relay.denied")])
def test_global_ipv6_client_in_a_namespace(start_milter, start_postfix, start_sendmail, sink, ipv6_link, trusted, reason,
                                           mta):
    """Each MTA relays for the namespace's /64 itself (Sendmail's class R
    spells it uncompressed), so that relay-milter alone decides."""
    milter = start_milter(config_text(trusted=trusted, sections=NO_PROBES))
    if mta == "postfix":
        server = start_postfix(listen=ipv6_link.host_address, milter=milter.postfix_spec, relaxed_limits=False,
                               mynetworks=f"127.0.0.0/8 [{ipv6_link.prefix.replace('/', ']/')}")
    else:
        server = start_sendmail(listen=ipv6_link.host_address, milter=milter.socket,
                                relay_networks=("127", "IPv6:2001:db8:25:0:0:0"))
    code, out = swaks_in(ipv6_link, server.port, to="friend@faraway.example")
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "client.address") == ipv6_link.peer_address and field(line, "decision.reason") == reason, line + out
    if reason == "relay.denied":
        assert "Relay access denied (relay.denied)" in out, out
    else:
        assert code == 0, out
        assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"])
    code, out = swaks_in(ipv6_link, server.port, to="bob@example.test")
    assert code == 0, out
    assert field(decision_for(milter, "bob@example.test"), "client.address") == ipv6_link.peer_address


def test_global_ipv6_host_is_tested_then_refused(start_milter, start_postfix, sink, ipv6_link):
    """The client's own host, inside the namespace, is an open relay (a real
    Postfix with mynetworks = everything, listening on the client's global
    address): relay-milter tests it over IPv6 and refuses it from then on."""
    # Any port is free in a namespace just made (free_port() looks on this side).
    suspect = start_postfix(name="suspect", listen=ipv6_link.peer_address, netns=ipv6_link.name, port=free_port(V6),
                            mynetworks="0.0.0.0/0 [::]/0", relaxed_limits=False)
    # The namespace's 2001:db8::/32 addresses stand for global ones here, so
    # that documentation block, excluded by default, is not.
    milter = start_milter(config_text(trusted=("127.0.0.1/32",), sections=(
        f'[probe]\ntest_domain = "relay-test.example"\nport = {suspect.port}\nnetwork_interval = 0\ncommand_timeout = 5\n'
        'exclude_networks = ["127.0.0.0/8", "::1/128"]\n')))
    guarded = start_postfix(name="guarded", listen=ipv6_link.host_address, milter=milter.postfix_spec,
                            mynetworks=f"127.0.0.0/8 [{ipv6_link.prefix.replace('/', ']/')}", relaxed_limits=False)
    assert swaks_in(ipv6_link, guarded.port, to="bob@example.test")[0] == 0
    # (The harness's own check that the guarded Postfix listens came from this
    # side, 2001:db8:25::1, which is tested too, and found with no SMTP server.)
    finished = lambda: [l for l in milter.log().splitlines() if 'msg="open-relay test finished"' in l
                        and field(l, "client.address") == ipv6_link.peer_address]
    assert wait_until(finished, timeout=90), milter.log()[-3000:]
    assert "probe.verdict=open" in finished()[0], finished()[0]
    code, out = swaks_in(ipv6_link, guarded.port, to="carol@example.test")
    assert f"<** 550 5.7.1 Your host {ipv6_link.peer_address} was found to be an open relay on" in out, out


# --- Recipients Postfix resolves to the error transport -----------------------

def alias_postfix(start_postfix, milter, workdir, alias_domains):
    """A Postfix that trusts only 127.0.0.1 itself, with virtual alias domains
    from a regexp table; every address in them is rewritten after queueing."""
    (workdir / "alias-domains").write_text(alias_domains)
    (workdir / "alias-maps").write_text(
        "/^info@alias\\.example$/ bob@example.test\n"
        "/^(.+)@evil\\.example$/ $1@faraway.example\n")
    return start_postfix(mynetworks="127.0.0.1/32", milter=milter.postfix_spec, relaxed_limits=False, extra={
        "virtual_alias_domains": f"regexp:{workdir}/alias-domains",
        "virtual_alias_maps": f"regexp:{workdir}/alias-maps",
    })


@only("postfix", "virtual alias domains are Postfix's; Sendmail's virtusertable is its own row")
def test_an_over_broad_virtual_alias_domain_does_not_make_an_open_relay(start_milter, start_postfix, sink, workdir, mta):
    """The regexp matches foreign domains too, so Postfix itself accepts
    victim@evil.example from anyone and would deliver it to the outside world
    (checked first without relay-milter). Postfix resolves it to the `error`
    transport, as it does every address of a virtual alias domain, accepted
    or not: relay-milter decides it, and refuses."""
    alias_domains = "/^alias\\.example$/ OK\n/^evil\\.example$/ OK\n"
    (workdir / "bare-alias-domains").write_text(alias_domains)
    (workdir / "bare-alias-maps").write_text("/^(.+)@evil\\.example$/ $1@faraway.example\n")
    bare = start_postfix(name="bare", mynetworks="127.0.0.1/32", relaxed_limits=False, extra={
        "virtual_alias_domains": f"regexp:{workdir}/bare-alias-domains",
        "virtual_alias_maps": f"regexp:{workdir}/bare-alias-maps"})
    code, out = swaks(bare.port, source="127.0.0.2", to="victim@evil.example")
    assert code == 0, out
    assert wait_until(lambda: "<victim@faraway.example>" in sink.recipients()), bare.log()[-2000:]

    milter = start_milter(config_text(local_domains=("example.test", "alias.example")))
    guarded = alias_postfix(start_postfix, milter, workdir, alias_domains)
    code, out = swaks(guarded.port, source="127.0.0.2", to="victim2@evil.example")
    assert "<** 550 5.7.1 <victim2@evil.example>: Relay access denied (relay.denied)" in out, out
    line = decision_for(milter, "victim2@evil.example")
    assert field(line, "mta.transport") == "error" and field(line, "decision.reason") == "relay.denied", line
    time.sleep(1.5)
    assert "<victim2@faraway.example>" not in sink.recipients()


@only("postfix", "virtual alias domains are Postfix's; Sendmail's virtusertable is its own row")
def test_a_virtual_alias_domain_of_ours_is_accepted_and_decided(start_milter, start_postfix, sink, workdir, mta):
    milter = start_milter(config_text(local_domains=("example.test", "alias.example")))
    postfix = alias_postfix(start_postfix, milter, workdir, "/^alias\\.example$/ OK\n")
    code, out = swaks(postfix.port, source="127.0.0.2", to="info@alias.example")
    assert code == 0, out
    line = decision_for(milter, "info@alias.example")
    assert field(line, "decision.reason") == "relay.local_recipient" and field(line, "mta.transport") == "error", line
    assert wait_until(lambda: len(postfix.delivered()) == 1), postfix.log()[-2000:]
    assert "To: info@alias.example" in postfix.delivered()[0]
    # Accepted, so never counted as a recipient the MTA refused.
    assert milter.metrics()[("relay_milter_mta_rejected_recipients_total", frozenset())] == 0


@only("postfix", "Debian's Sendmail never sends milters a recipient it refused (no SMFIP_RCPT_REJ): test_sendmail.py")
def test_a_recipient_postfix_refused_reaches_us_in_postfixs_own_form(start_milter, start_postfix, sink, mta):
    """relay-milter asks for refused recipients too (SMFIP_RCPT_REJ): Postfix
    sends {rcpt_mailer}=error, {rcpt_host}=the status, {rcpt_addr}=the text.
    It is counted, not decided, and the client sees Postfix's own reply."""
    milter = start_milter(config_text())
    postfix = start_postfix(mynetworks="127.0.0.1/32", milter=milter.postfix_spec, relaxed_limits=False)
    code, out = swaks(postfix.port, source="127.0.0.2", to="victim@elsewhere.example")
    assert "<** 554 5.7.1 <victim@elsewhere.example>: Relay access denied" in out, out
    line = decision_for(milter, "victim@elsewhere.example")
    assert field(line, "decision.reason") == "relay.mta_rejected" and field(line, "mta.transport") == "error", line
    assert field(line, "mta.rcpt_addr") is None, line  # a refusal's text is not a rewritten address
    assert milter.metrics()[("relay_milter_mta_rejected_recipients_total", frozenset())] == 1


def test_a_recipient_postfix_rewrote_shows_both_forms(start_milter, start_postfix, sink):
    """`<postmaster>` unqualified: Postfix appends $myorigin. The decision line
    shows what Postfix made of it beside what the client gave."""
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False)
    swaks(postfix.port, source="127.0.0.2", to="postmaster")
    line = decision_for(milter, "postmaster")
    assert field(line, "mta.rcpt_addr") == "postmaster@mx.example.test", line


# --- Sendmail ---------------------------------------------------------------

@pytest.mark.parametrize("trusted,reason", [(("127.0.0.1/32", "::1/128"), "relay.trusted_network"),
                                            (("127.0.0.1/32",), "relay.denied")])
def test_sendmail_ipv6_client(start_milter, start_sendmail, sink, trusted, reason):
    """Sendmail on [::1], relaying itself for ::1 (its class R spells IPv6
    addresses uncompressed), so that relay-milter alone decides."""
    milter = start_milter(config_text(trusted=trusted))
    sendmail = start_sendmail(listen=V6, relay_networks=("127", "IPv6:0:0:0:0:0:0:0:1"), milter=milter.socket)
    code, out = swaks(sendmail.port, server=V6, source=V6, to="friend@faraway.example")
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "client.address") == "::1" and field(line, "decision.reason") == reason, line + out
    if reason == "relay.denied":
        assert "Relay access denied (relay.denied)" in out, out
    else:
        assert code == 0, out
        assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"]), sendmail.log()[-2000:]
    code, out = swaks(sendmail.port, server=V6, source=V6, to="bob@example.test")
    assert code == 0, out
    local = "relay.trusted_network" if reason == "relay.trusted_network" else "relay.local_recipient"
    assert field(decision_for(milter, "bob@example.test"), "decision.reason") == local


def test_the_shipped_sendmail_lines_keep_sendmails_own_macros(start_milter, start_sendmail, sink):
    """The confMILTER_MACROS_* lists are the ones every milter of that
    Sendmail gets: the shipped lines add what relay-milter reads and keep
    each of Sendmail's defaults (read from its own cf/m4/cfhead.m4)."""
    milter = start_milter(config_text())
    server = start_sendmail(milter=milter.socket)
    defaults = dict(re.findall(r"define\(`confMILTER_MACROS_(\w+)', `+([^']*)'+\)",
                               (sendmail.CF_DIR / "m4" / "cfhead.m4").read_text()))
    options = dict(re.findall(r"^O Milter\.macros\.(\w+)=(.*)$", server.cf.read_text(), re.M))
    names = {"CONNECT": "connect", "HELO": "helo", "ENVFROM": "envfrom", "ENVRCPT": "envrcpt", "EOM": "eom"}
    assert set(defaults) >= set(names), defaults
    for macro, option in names.items():
        ours = {name.strip() for name in options[option].split(",")}
        assert {name.strip() for name in defaults[macro].split(",")} <= ours, (option, ours)
    assert "{msg_id}" in options["eom"] and "v" in options["connect"].replace(" ", "").split(","), options


@only("sendmail", "Postfix has no virtusertable; its virtual alias domains are their own row")
def test_sendmail_virtusertable_forward_of_a_local_recipient_is_accepted(start_milter, start_sendmail, sink, mta):
    """Sendmail resolves info@example.test through its virtusertable before
    the milter sees it: relay-milter gets the forward's target and its remote
    mailer. The recipient the client named is local: accepted, forwarded."""
    milter = start_milter(config_text())
    sendmail = start_sendmail(milter=milter.socket, tables={"virtusertable": {"info@example.test": "someone@remote.example"}})
    code, out = swaks(sendmail.port, source="127.0.0.2", to="info@example.test")
    assert code == 0, out + sendmail.log()[-2000:]
    line = decision_for(milter, "info@example.test")
    assert field(line, "decision.reason") == "relay.local_recipient", line
    assert field(line, "mta.rcpt_addr") == "someone@remote.example", line
    assert field(line, "mta.transport") in ("relay", "esmtp"), line
    assert wait_until(lambda: "<someone@remote.example>" in sink.recipients()), sendmail.log()[-2000:]
    # A remote recipient from the same client is still refused (Sendmail here,
    # as in its own suite, lets all of 127.0.0.0/8 relay: relay-milter decides).
    code, out = swaks(sendmail.port, source="127.0.0.2", to="victim@elsewhere.example")
    assert code != 0 and "Relay access denied (relay.denied)" in out, out


@only("sendmail", "Postfix has no mailertable; its relay domains go through transport_maps")
def test_sendmail_mailertable_routing_a_relay_domain_is_accepted(start_milter, start_sendmail, sink, mta):
    """A domain Sendmail relays for (RELAY_DOMAIN) and routes with its
    mailertable: a relay domain for relay-milter, whatever mailer reaches it."""
    milter = start_milter(config_text(extra_policy='relay_domains = ["backup.example"]'))
    sendmail = start_sendmail(relay_networks=("127.0.0.1", "backup.example"), milter=milter.socket, tables={
        "mailertable": {"backup.example": "esmtp:[127.0.0.1]"}})
    code, out = swaks(sendmail.port, source="127.0.0.2", to="user@backup.example")
    assert code == 0, out + sendmail.log()[-2000:]
    line = decision_for(milter, "user@backup.example")
    assert field(line, "decision.reason") == "relay.relay_domain" and field(line, "mta.transport") == "esmtp", line
    assert wait_until(lambda: "<user@backup.example>" in sink.recipients())


# --- SASL submission ----------------------------------------------------------

SUBMISSION = """\
{address} inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
"""


def sasl_postfix(start_postfix, milter, workdir, **extra):
    """Postfix with Cyrus SASL on a submission service defined in master.cf,
    with the -o overrides Debian's master.cf carries for port 587 (less TLS:
    what is tested is the SASL identity). The users are in a sasldb of the
    test's own: Debian's Postfix reads smtpd.conf from the instance's own
    config directory (sasl/smtpd.conf there; cyrus_sasl_config_path is not
    consulted), whose sasldb_path names it, so /etc/sasldb2 is neither read
    nor written."""
    sasl_dir = workdir / "postfix" / "etc" / "sasl"
    database = sasldb(sasl_dir)
    (sasl_dir / "smtpd.conf").write_text(
        f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {database}\n")
    submission_port = free_port()
    postfix = start_postfix(mynetworks="127.0.0.1/32", milter=milter.postfix_spec, relaxed_limits=False,
                            master_extra=SUBMISSION.format(address=f"127.0.0.1:{submission_port}"), extra=extra)
    assert wait_until(lambda: port_open(submission_port)), postfix.log()
    return postfix, submission_port


def port_open(port):
    from mailharness.ports import wait_for_port
    return wait_for_port(port, timeout=0.5)


AUTH = ("--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "alice's secret")


def sasldb(directory):
    """alice@example.test in a sasldb of the test's own, readable by Postfix's daemons."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    database = directory / "sasldb2"
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(database), "-u", "example.test", "alice"],
                   input="alice's secret", text=True, check=True)
    shutil.chown(database, user="postfix")
    return database


def sasl_sendmail(start_sendmail, milter, workdir, relay_networks=()):
    """Sendmail with AUTH PLAIN and LOGIN from Cyrus SASL, relaying itself
    for authenticated clients (and `relay_networks`)."""
    sasl_dir = workdir / "sendmail-sasl"
    database = sasldb(sasl_dir)
    (sasl_dir / "Sendmail.conf").write_text(
        f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {database}\n")
    server = start_sendmail(milter=milter.socket, relay_networks=relay_networks, sasl_dir=sasl_dir)
    return server, server.port


@pytest.mark.parametrize("mta", ["postfix", "sendmail"])
def test_sasl_authenticated_submission_relays(start_milter, start_postfix, start_sendmail, sink, workdir, mta):
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    if mta == "postfix":
        server, port = sasl_postfix(start_postfix, milter, workdir)
    else:
        server, port = sasl_sendmail(start_sendmail, milter, workdir)
    code, out = swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=AUTH)
    assert code == 0, out + server.log()[-2000:]
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "decision.reason") == "relay.authenticated", line
    assert field(line, "client.auth") == "alice@example.test" and field(line, "client.address") == "127.0.0.2", line
    if mta == "postfix":
        assert field(line, "mta.daemon") == "ORIGINATING", line  # the submission service's -o override
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"])
    # A local recipient from the same client, without AUTH, is still accepted.
    assert swaks(port if mta == "sendmail" else server.port, source="127.0.0.2", to="bob@example.test")[0] == 0


@pytest.mark.parametrize("mta", ["postfix", "sendmail"])
def test_an_authenticated_client_is_never_tested_for_open_relaying(start_milter, start_postfix, start_sendmail, sink,
                                                                   workdir, mta):
    """A SASL user's address is a user's (often a home line), not a relay to
    test: the MTA says who authenticated only with MAIL, and only then is a
    test queued, for an unauthenticated client alone. Tests go to port 9 on
    loopback, where nothing listens: each ends at once (`no_smtp`)."""
    milter = start_milter(config_text(trusted=("127.0.0.1/32",), sections=(
        '[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\nport = 9\nnetwork_interval = 0\n')))
    if mta == "postfix":
        server, port = sasl_postfix(start_postfix, milter, workdir)
        public_port = server.port
    else:
        server, port = sasl_sendmail(start_sendmail, milter, workdir)
        public_port = port
    assert swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=AUTH)[0] == 0
    assert swaks(public_port, source="127.0.0.3", to="bob@example.test")[0] == 0
    finished = lambda address: [l for l in milter.log().splitlines()
                                if 'msg="open-relay test finished"' in l and field(l, "client.address") == address]
    assert wait_until(lambda: finished("127.0.0.3"), timeout=30), milter.log()[-3000:]
    time.sleep(1)  # a test of 127.0.0.2 would have been queued first
    assert finished("127.0.0.2") == [], finished("127.0.0.2")
    assert "client.address=127.0.0.2" in decision_for(milter, "friend@faraway.example")


def test_sendmail_failed_auth_then_relay_is_refused_by_us(start_milter, start_sendmail, sink, workdir):
    """Sendmail itself relays for all of 127.0.0.0/8 here: after a failed
    AUTH, the relay reaches relay-milter, which sees no login and refuses."""
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    server, port = sasl_sendmail(start_sendmail, milter, workdir, relay_networks=("127",))
    wrong = ("--auth-optional", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "wrong")
    code, out = swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=wrong)
    assert "535 5.7.0" in out and "Relay access denied (relay.denied)" in out, out
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "decision.reason") == "relay.denied" and field(line, "client.auth") is None, line
    time.sleep(1)
    assert sink.recipients() == []


def test_sasl_failed_auth_then_relay_is_refused(start_milter, start_postfix, sink, workdir):
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    postfix, port = sasl_postfix(start_postfix, milter, workdir)
    wrong = ("--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "wrong")
    code, out = swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=wrong)
    assert "535 5.7.8" in out, out
    # Without authentication the submission service admits no one; on the
    # public port (Postfix trusting only 127.0.0.1 itself), relay-milter
    # sees Postfix's own refusal of the relay, and no authentication.
    code, out = swaks(postfix.port, source="127.0.0.2", to="friend@faraway.example")
    assert "<** 554 5.7.1 <friend@faraway.example>: Relay access denied" in out, out
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "decision.reason") == "relay.mta_rejected" and field(line, "client.auth") is None, line
    time.sleep(1)
    assert sink.recipients() == []


def test_sasl_identity_reaches_us_whatever_milter_mail_macros_says(start_milter, start_postfix, sink, workdir):
    """relay-milter asks for {auth_authen} itself (smfi_setsymlist), and
    Postfix honours that list over its own milter_mail_macros."""
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    postfix, port = sasl_postfix(start_postfix, milter, workdir, milter_mail_macros="i")
    code, out = swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=AUTH)
    assert code == 0, out + postfix.log()[-2000:]
    assert field(decision_for(milter, "friend@faraway.example"), "decision.reason") == "relay.authenticated"


# --- Non-SMTP submission ------------------------------------------------------

def postfix_sendmail(postfix, *recipients, sender="cron@mx.example.test", body="Subject: from cron\n\nhello\n"):
    """Postfix's own sendmail(1) for this instance: postdrop puts the message
    in the maildrop queue, pickup hands it to cleanup, which runs
    non_smtpd_milters."""
    result = subprocess.run(["sendmail", "-C", str(postfix.config_dir), "-f", sender, *recipients],
                            input=body, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("submit", ["sendmail", "sendmail -bs"])
def test_locally_submitted_mail_relays_from_the_trusted_local_host(start_milter, start_postfix, sink, submit):
    """Postfix hands non-SMTP mail (both ways sendmail(1) takes it: arguments,
    and SMTP on its standard input with -bs; each goes through postdrop into
    the maildrop queue) to its non_smtpd_milters as client localhost /
    127.0.0.1, which the shipped config trusts."""
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False,
                            extra={"non_smtpd_milters": milter.postfix_spec})
    if submit == "sendmail":
        postfix_sendmail(postfix, "friend@faraway.example", "bob@example.test")
    else:
        dialog = ("HELO localhost\r\nMAIL FROM:<cron@mx.example.test>\r\nRCPT TO:<friend@faraway.example>\r\n"
                  "RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: from cron\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        result = subprocess.run(["sendmail", "-C", str(postfix.config_dir), "-bs"], input=dialog,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and "250 2.0.0 Ok: queued" in result.stdout, result.stdout + result.stderr
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"]), postfix.log()[-2000:]
    assert wait_until(lambda: len(postfix.delivered()) == 1)
    remote = decision_for(milter, "friend@faraway.example")
    assert field(remote, "client.address") == "127.0.0.1" and field(remote, "decision.reason") == "relay.trusted_network", remote
    assert field(remote, "client.name") == "localhost", remote


def test_sendmail_command_line_submission_relays_from_the_trusted_local_host(start_milter, start_sendmail, sink):
    """Sendmail's own sendmail(1): the submission program (a submit.cf made
    with FEATURE(`msp'), as Debian ships it) hands the message to the MTA
    over SMTP from 127.0.0.1, which the shipped config trusts."""
    milter = start_milter(config_text())
    server = start_sendmail(milter=milter.socket)
    result = server.submit("friend@faraway.example", "bob@example.test", sender="cron@mx.example.test",
                           message="Subject: from cron\n\nhello\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"]), server.log()[-2000:]
    assert wait_until(lambda: server.delivered_to("bob"))
    remote = decision_for(milter, "friend@faraway.example")
    assert field(remote, "client.address") == "127.0.0.1" and field(remote, "decision.reason") == "relay.trusted_network", remote


# --- postscreen and proxies ----------------------------------------------------

NO_PROBES = '[probe]\nenabled = false\n'


def relay_for(workdir, network):
    """smtpd settings under which Postfix itself relays for `network` as for
    mynetworks, so that relay-milter alone decides: Postfix refuses a bare
    `permit` there, so through a client access table."""
    (workdir / "relay-clients").write_text(f"{network} OK\n")
    return {"smtpd_relay_restrictions":
            f"permit_mynetworks, check_client_access cidr:{workdir}/relay-clients, reject_unauth_destination"}


@only("postfix", "postscreen is Postfix's; Sendmail takes connections itself")
def test_postscreen_in_front_of_smtpd_passes_the_true_client(start_milter, start_postfix, sink, workdir, mta):
    """Debian's postscreen layout at postscreen's defaults: a client outside
    mynetworks waits out the pregreet test (postscreen_greet_wait) before
    smtpd gets its socket; relay-milter sees the client, not postscreen."""
    milter = start_milter(config_text())
    postfix = start_postfix(postscreen=True, mynetworks="127.0.0.1/32", milter=milter.postfix_spec,
                            relaxed_limits=False, extra=relay_for(workdir, "127.0.0.0/8"))
    check_the_row(milter, sink, postfix.port, untrusted="127.0.0.2", trusted="127.0.0.1", proof=postfix.log()[-2000:])
    assert "postfix/postscreen" in postfix.log() and "PASS NEW [127.0.0.2]" in postfix.log(), postfix.log()[-2000:]


@only("postfix", "Sendmail does not implement XCLIENT")
def test_xclient_names_the_real_client_and_the_proxy_is_not_trusted_for_it(start_milter, start_postfix, sink, workdir, mta):
    """A proxy at 127.0.0.1 (trusted) tells Postfix the real client with
    XCLIENT: relay-milter decides on the real client, and the proxy's own
    trust does not pass to the clients it speaks for. The real client here
    is a documentation address that nothing ever connects to (probes off)."""
    milter = start_milter(config_text(sections=NO_PROBES))
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False,
                            extra={"smtpd_authorized_xclient_hosts": "127.0.0.1",
                                   **relay_for(workdir, "203.0.113.5/32")})
    code, out = swaks(postfix.port, source="127.0.0.1", to="friend@faraway.example",
                      extra=("--xclient-addr", "203.0.113.5", "--xclient-name", "client.example"))
    assert "<** 550 5.7.1 <friend@faraway.example>: Relay access denied (relay.denied)" in out, out
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "client.address") == "203.0.113.5", line
    code, out = swaks(postfix.port, source="127.0.0.1", to="bob@example.test",
                      extra=("--xclient-addr", "203.0.113.5"))
    assert code == 0, out
    # Without XCLIENT the proxy host itself is trusted.
    assert swaks(postfix.port, source="127.0.0.1", to="friend2@faraway.example")[0] == 0
    assert field(decision_for(milter, "friend2@faraway.example"), "client.address") == "127.0.0.1"
    assert wait_until(lambda: sink.recipients() == ["<friend2@faraway.example>"])


@only("postfix", "Sendmail does not implement XCLIENT")
def test_a_client_postfix_cannot_name_through_xclient_is_tempfailed(start_milter, start_postfix, sink, workdir, mta):
    """A proxy that does not know the client says so (XCLIENT ADDR=[UNAVAILABLE]).
    Postfix then sends the milter the address `unknown` as an IPv4 address,
    which libmilter refuses before any milter sees the connection: Postfix
    applies milter_default_action (tempfail, as the snippet sets). Fails
    closed, nothing relayed; relay-milter never hears of it."""
    milter = start_milter(config_text(sections=NO_PROBES))
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False,
                            extra={"smtpd_authorized_xclient_hosts": "127.0.0.1"})
    code, out = swaks(postfix.port, source="127.0.0.1", to="friend@faraway.example",
                      extra=("--xclient-addr", "[UNAVAILABLE]"))
    assert "<** 451 4.7.1 Service unavailable - try again later" in out, out
    assert "can't read SMFIC_CONNECT reply packet header" in postfix.log(), postfix.log()[-2000:]
    time.sleep(1)
    assert milter.decisions() == [] and sink.recipients() == []


def sendmail_bs(server, dialog):
    """Sendmail's `sendmail -bs`: SMTP on standard input, one command (or the
    message text, ending in `.`) at a time after each reply, since Sendmail
    refuses a client that talks before its turn. Returns the replies."""
    proc = subprocess.Popen(["unshare", "--uts", "sh", "-c", f'hostname {server.hostname} && exec "$@"', "sh",
                             str(sendmail.BINARY), "-C", str(server.cf), "-L", server.tag, "-bs"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    transcript = []

    def reply():
        while True:
            line = proc.stdout.readline()
            transcript.append(line)
            if not line or line[3:4] != "-":
                return line

    reply()
    for command in dialog:
        if transcript[-1].startswith("5") and command.endswith("\r\n."):
            continue  # DATA was refused: the message text would only be read as commands
        proc.stdin.write(command + "\r\n")
        proc.stdin.flush()
        reply()
    proc.stdin.close()
    proc.wait(timeout=30)
    return "".join(transcript)


@pytest.mark.parametrize("unknown_action", ["accept", "tempfail"])
def test_sendmail_bs_gives_no_client_address_and_we_say_so(start_milter, start_sendmail, sink, unknown_action):
    """Sendmail's `sendmail -bs` runs the milters with {client_addr} `0` and
    no socket address: relay-milter counts and logs the unidentified client,
    never trusts it (the relay is refused, the local recipient accepted), and
    holds it at MAIL FROM when unknown_action says to."""
    milter = start_milter(config_text(sections=NO_PROBES + f'[enforcement]\nunknown_action = "{unknown_action}"\n'))
    server = start_sendmail(milter=milter.socket)
    out = sendmail_bs(server, ["HELO localhost", "MAIL FROM:<cron@mx.example.test>", "RCPT TO:<friend@faraway.example>",
                               "RCPT TO:<bob@example.test>", "DATA", "Subject: -bs\r\n\r\nhello\r\n.", "QUIT"])
    assert milter.logged('msg="client address unknown"', "mta.client_addr=0", "client.unknown=unparsable"), milter.log()
    metrics = milter.metrics()
    assert metrics[("relay_milter_clients_unidentified_total", frozenset({("cause", "unparsable")}))] == 1
    if unknown_action == "tempfail":
        assert "451 4.7.1" in out, out
        assert milter.logged('msg="host decision"', "decision.reason=host.unidentified"), milter.log()
    else:
        assert "Relay access denied (relay.denied)" in out, out
        line = decision_for(milter, "friend@faraway.example")
        assert field(line, "client.address") == "unknown" and field(line, "decision.reason") == "relay.denied", line
        assert wait_until(lambda: server.delivered_to("bob")), server.log()[-2000:]
    time.sleep(1)
    assert sink.recipients() == []


HAPROXY_CFG = """\
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:{front}
    default_backend postfix
backend postfix
    server postfix 127.0.0.1:{back} send-proxy
"""


@pytest.fixture
def haproxy(workdir):
    """Debian's HAProxy on loopback, in TCP mode, sending the PROXY protocol
    header to the backend it is given."""
    from mailharness.ports import wait_for_port
    started = []

    def start(backend_port):
        front = free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(HAPROXY_CFG.format(front=front, back=backend_port))
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        assert wait_for_port(front), proc.stdout.read() if proc.poll() is not None else "haproxy did not listen"
        return front

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


@only("postfix", "Debian's Sendmail 8.17 is built without the PROXY protocol (sendmail -d0.1)")
def test_haproxy_in_front_passes_the_real_client_and_is_not_trusted_for_it(start_milter, start_postfix, sink,
                                                                           workdir, haproxy, mta):
    """Postfix behind HAProxy (smtpd_upstream_proxy_protocol = haproxy): the
    milter sees the client HAProxy names, not HAProxy's own 127.0.0.1, which
    relay-milter trusts."""
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False,
                            extra={"smtpd_upstream_proxy_protocol": "haproxy"})
    front = haproxy(postfix.port)
    check_the_row(milter, sink, front, untrusted="127.0.0.2", trusted="127.0.0.1", proof=postfix.log()[-2000:])


@only("postfix", "smtpd_milter_maps is Postfix's; Sendmail attaches its milters to every connection")
def test_smtpd_milter_maps_exempts_one_client_only(start_milter, start_postfix, sink, workdir, mta):
    """Postfix's smtpd_milter_maps: a client mapped to DISABLE never reaches
    relay-milter (Postfix's own restrictions alone apply to it); every other
    client still does."""
    milter = start_milter(config_text())
    (workdir / "milter-maps").write_text("127.0.0.5/32 DISABLE\n")
    postfix = start_postfix(milter=milter.postfix_spec, relaxed_limits=False,
                            extra={"smtpd_milter_maps": f"cidr:{workdir}/milter-maps"})
    assert swaks(postfix.port, source="127.0.0.5", to="friend@faraway.example")[0] == 0
    code, out = swaks(postfix.port, source="127.0.0.2", to="victim@faraway.example")
    assert "Relay access denied (relay.denied)" in out, out
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"])
    decisions = milter.decisions(at_least=1)
    assert [field(line, "mail.rcpt") for line in decisions] == ["<victim@faraway.example>"], decisions


# --- Two milters ------------------------------------------------------------------

@pytest.fixture
def noop_milter(workdir):
    """The benchmarks' no-op C milter (libmilter's defaults: it takes every
    step), built here: cc takes a second."""
    from mailharness.noopmilter import NoopMilter
    from mailharness.relaymilter import REPO
    binary = workdir / "noop-milter"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(REPO / "Benchmarks/NoopMilter/noop-milter.c"),
                    *subprocess.run(["pkg-config", "--cflags", "--libs", "milter"], capture_output=True, text=True,
                                    check=True).stdout.split(), "-lpthread"], check=True)
    noop = NoopMilter(binary, workdir / "noop", "inet").start()
    yield noop
    noop.stop()


def postfix_spec(socket):
    port, host = socket[len("inet:"):].split("@")
    return f"inet:{host}:{port}"


@pytest.mark.parametrize("mta", ["postfix", "sendmail"])
@pytest.mark.parametrize("relay_milter_first", [True, False])
def test_relay_milter_in_a_chain_with_another_milter(start_milter, start_postfix, start_sendmail, sink, noop_milter,
                                                    mta, relay_milter_first):
    milter = start_milter(config_text())
    if mta == "postfix":
        chain = [milter.postfix_spec, postfix_spec(noop_milter.socket)]
        server = start_postfix(milter=", ".join(chain if relay_milter_first else chain[::-1]), relaxed_limits=False)
    else:
        server = start_sendmail(milter=milter.socket, other_milter=noop_milter.socket, other_first=not relay_milter_first)
    code, out = swaks(server.port, source="127.0.0.2", to="victim@faraway.example")
    assert "Relay access denied (relay.denied)" in out, out
    assert swaks(server.port, source="127.0.0.2", to="bob@example.test")[0] == 0
    assert swaks(server.port, source="127.0.0.1", to="friend@faraway.example")[0] == 0
    assert wait_until(lambda: sink.recipients() == ["<friend@faraway.example>"])
    assert wait_until(lambda: len(server.delivered()) == 1)
    assert "warning: milter" not in server.log() and "Milter (other)" not in server.log(), server.log()[-2000:]


@only("postfix", "milter_protocol is Postfix's setting; Sendmail always speaks protocol 6")
def test_postfix_takes_our_macro_list_even_at_milter_protocol_2(start_milter, start_postfix, sink, workdir, mta):
    """Postfix reads a milter's macro lists from its negotiation reply at any
    protocol version: with milter_protocol = 2 and milter_mail_macros left
    without {auth_authen}, the SASL login still reaches relay-milter, and it
    has nothing to warn about (it warns, once, only when an MTA does not take
    the list: test_milter_protocol.py)."""
    milter = start_milter(config_text(trusted=("127.0.0.1/32",)))
    postfix, port = sasl_postfix(start_postfix, milter, workdir, milter_protocol="2", milter_mail_macros="i")
    code, out = swaks(port, source="127.0.0.2", to="friend@faraway.example", extra=AUTH)
    assert code == 0, out + postfix.log()[-2000:]
    line = decision_for(milter, "friend@faraway.example")
    assert field(line, "decision.reason") == "relay.authenticated" and field(line, "client.auth") == "alice@example.test", line
    assert "did not take relay-milter's macro list" not in milter.log()


# --- Transactions, through either MTA ----------------------------------------------

@pytest.fixture
def start_mta(start_postfix, start_sendmail):
    """Postfix (at its default limits) or Sendmail (the shipped lines), each
    relaying for all of loopback itself so that relay-milter alone decides."""
    def start(mta, milter, **kwargs):
        if mta == "postfix":
            return start_postfix(milter=milter.postfix_spec, relaxed_limits=False, **kwargs)
        return start_sendmail(milter=milter.socket, **kwargs)
    return start


MTAS = ["postfix", "sendmail"]


def transaction_accepted(out):
    """swaks saw DATA accepted: Postfix's `Ok: queued as`, Sendmail's `Message accepted for delivery`."""
    return re.search(r"<-  250 2\.0\.0 .*(queued as|Message accepted for delivery)", out)


@pytest.mark.parametrize("mta", MTAS)
def test_pipelining_client(start_milter, start_mta, sink, mta):
    """swaks sends MAIL, both RCPTs and DATA in one write (PIPELINING)."""
    milter = start_milter(config_text())
    server = start_mta(mta, milter)
    code, out = swaks(server.port, source="127.0.0.2", to="bob@example.test,victim@faraway.example",
                      extra=("--pipeline",))
    assert "PIPELINING" in out and "Relay access denied (relay.denied)" in out, out
    assert transaction_accepted(out), out
    assert wait_until(lambda: len(server.delivered()) == 1)
    time.sleep(1)
    assert sink.recipients() == []


def smtp_session(port, source="127.0.0.2"):
    import smtplib
    session = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), local_hostname="client.example", timeout=30)
    session.ehlo()
    return session


@only("postfix", "Sendmail does not implement CHUNKING (BDAT): it never offers it")
def test_bdat_chunking(start_milter, start_mta, sink, mta):
    """The message in BDAT chunks (CHUNKING, which Postfix offers by default)
    instead of DATA: no client library here speaks it, so the commands are
    written by hand, on a real connection to the real Postfix."""
    milter = start_milter(config_text())
    postfix = start_mta(mta, milter)
    session = smtp_session(postfix.port)
    assert session.has_extn("chunking")
    assert session.mail("<sender@elsewhere.example>")[0] == 250
    assert session.rcpt("<bob@example.test>")[0] == 250
    code, reply = session.rcpt("<victim@faraway.example>")
    assert code == 550 and b"relay.denied" in reply, reply
    first, last = b"Subject: in chunks\r\n\r\n", b"hello in two chunks\r\n"
    session.send(b"BDAT %d\r\n" % len(first) + first)
    assert session.getreply()[0] == 250
    session.send(b"BDAT %d LAST\r\n" % len(last) + last)
    code, reply = session.getreply()
    assert code == 250 and b"queued" in reply, reply
    session.quit()
    assert wait_until(lambda: len(postfix.delivered()) == 1)
    assert "hello in two chunks" in postfix.delivered()[0]
    assert sink.recipients() == []


@only("postfix", "Debian's Sendmail is built without USE_EAI (sendmail -d0.1): it never offers SMTPUTF8")
def test_smtputf8_recipients(start_milter, start_mta, sink, mta):
    milter = start_milter(config_text())
    server = start_mta(mta, milter, extra={"smtputf8_enable": "yes"})
    session = smtp_session(server.port)
    assert session.has_extn("smtputf8")
    assert session.mail("<sender@elsewhere.example>", ["SMTPUTF8"])[0] == 250
    assert session.rcpt("<jörg@example.test>")[0] == 250
    code, reply = session.rcpt("<jörg@färaway.example>")
    assert code == 550 and "relay.denied" in reply.decode(), reply
    assert session.data("Subject: utf-8\r\n\r\nhej\r\n".encode())[0] == 250
    session.quit()
    assert field(decision_for(milter, "jörg@example.test"), "decision.reason") == "relay.local_recipient"
    assert field(decision_for(milter, "jörg@färaway.example"), "decision.reason") == "relay.denied"
    assert wait_until(lambda: len(server.delivered()) == 1)


@pytest.mark.parametrize("mta", MTAS)
def test_a_thousand_recipients_in_one_transaction(start_milter, start_mta, sink, mta):
    """Postfix's own load client, smtp-source, from the trusted 127.0.0.1:
    1,000 remote recipients (Postfix's smtpd_recipient_limit by default) in
    one message, each decided, all relayed."""
    milter = start_milter(config_text())
    server = start_mta(mta, milter)
    result = subprocess.run(["smtp-source", "-r", "1000", "-N", "-f", "sender@elsewhere.example",
                             "-t", "friend@faraway.example", "-M", "client.example", f"127.0.0.1:{server.port}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_until(lambda: len(milter.decisions()) == 1000, timeout=30), len(milter.decisions())
    assert all(field(line, "decision.reason") == "relay.trusted_network" for line in milter.decisions())
    assert wait_until(lambda: len(sink.recipients()) == 1000, timeout=60), len(sink.recipients())


@pytest.mark.parametrize("mta", MTAS)
def test_fifty_transactions_on_one_connection_with_rset_between(start_milter, start_mta, sink, mta):
    """One connection, fifty messages: each a local recipient, every tenth a
    refused remote one as well, then RSET. Nothing of one transaction leaks
    into the next (five refusals stay under Postfix's default error limits)."""
    milter = start_milter(config_text())
    server = start_mta(mta, milter)
    session = smtp_session(server.port)
    for n in range(50):
        assert session.mail(f"<sender{n}@elsewhere.example>")[0] == 250
        assert session.rcpt(f"<user{n}@example.test>")[0] == 250
        if n % 10 == 0:
            code, reply = session.rcpt(f"<victim{n}@faraway.example>")
            assert code == 550 and b"relay.denied" in reply, reply
        assert session.data(f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode())[0] == 250
        assert session.rset()[0] == 250
    session.quit()
    assert wait_until(lambda: len(milter.decisions()) == 55, timeout=20), len(milter.decisions())
    refused = [field(line, "mail.rcpt") for line in milter.decisions() if field(line, "decision.reason") == "relay.denied"]
    assert refused == [f"<victim{n}@faraway.example>" for n in range(0, 50, 10)], refused
    # Each decision carries its own transaction's sender, none the one before.
    for line in milter.decisions():
        n = re.search(r"(\d+)@", field(line, "mail.rcpt")).group(1)
        assert field(line, "mail.from") == f"<sender{n}@elsewhere.example>", line
    assert wait_until(lambda: len(server.delivered()) == 50, timeout=60), len(server.delivered())
    assert sink.recipients() == []
