"""Trap mode end to end: one real Postfix with a production smtpd and a trap
smtpd side by side (the trap's master.cf service is the one
`relay-milter postfix-snippet --trap` prints), each served by its own
relay-milter process over the same verdict database. Relay attempts on the
trap are accepted, recorded and discarded: the outside sink gets nothing.
Everything on loopback."""
import hashlib
import json
import re
import signal
import subprocess

from mailharness.nmap import nmap_open_relay
from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import binary, config_text
from mailharness.swaks import swaks

SPAMMER = "127.0.0.9"     # untrusted: relay-milter trusts 127.0.0.1 only
NEIGHBOUR = "127.0.0.10"  # untrusted too, mails a local user only


def trap_config(database, socket, extra=""):
    return config_text(socket=socket, sections=(
        '[probe]\nenabled = false\n'
        '[metrics]\nstats_detail = true\n'  # top clients and domains in `stats`
        f'[cache]\npath = "{database}"\n'
        '[trap]\nenabled = true\n' + extra))


def start_side_by_side(start_milter, start_postfix, trap_extra="", **postfix):
    """The production relay-milter, the trap relay-milter on the same
    database, and a Postfix serving both; returns (production, trap, postfix, trap_port)."""
    production = start_milter(config_text(sections='[probe]\nenabled = false\n'), name="production")
    trap_socket = f"inet:{free_port()}@127.0.0.1"
    trap = start_milter(trap_config(production.database, trap_socket, trap_extra), name="trap", socket=trap_socket)
    trap_port = free_port()
    snippet = subprocess.run([binary(), "postfix-snippet", "--trap", "--listen", f"127.0.0.1:{trap_port}",
                              "--config", str(trap.config_path)], capture_output=True, text=True, check=True).stdout
    assert "-o smtpd_relay_restrictions=check_client_access,static:OK," in snippet and "-o milter_default_action=tempfail" in snippet, snippet
    mx = start_postfix(name="mx", milter=production.postfix_spec, mynetworks="127.0.0.1/32", master_extra="\n" + snippet, **postfix)
    return production, trap, mx, trap_port


def inbox(mx):
    new = mx.mail_dir / "inbox" / "new"
    return list(new.glob("*")) if new.exists() else []


def trap_list(trap):
    out = subprocess.run([binary(), "trap", "list", "--json", "--config", str(trap.config_path)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_relay_attempts_are_taken_recorded_and_never_leave(start_milter, start_postfix, sink):
    production, trap, mx, trap_port = start_side_by_side(start_milter, start_postfix)
    body = "Cheap watches, today only."
    code, out = swaks(trap_port, to="one@victim.example,two@victim.example,three@other.example", source=SPAMMER,
                      sender="spammer@spam.example", header="Subject: Cheap watches",
                      extra=("--header", "Message-Id: <campaign-1@spam.example>", "--body", body))
    # Answered as an open relay answers: taken at RCPT and at the end of DATA.
    assert code == 0 and "<-  250" in out.split("<** ")[0], out
    assert wait_until(lambda: 'msg="relay attempt trapped"' in trap.log(), timeout=20), trap.log()[-2000:]
    mx.wait_queue_empty()
    assert "milter-discard" in mx.log(), mx.log()[-2000:]

    # The evidence: who, from where, for which domains, and a fingerprint, not the message.
    [attempt] = trap_list(trap)
    assert attempt["client"] == SPAMMER and attempt["helo"] == "client.example" and attempt["sender"] == "spammer@spam.example"
    assert attempt["recipients"] == 3 and attempt["domains"] == ["victim.example", "other.example"], attempt
    assert attempt["subject"] == "Cheap watches" and attempt["message_id"] == "<campaign-1@spam.example>", attempt
    # Postfix hands the milter the body as SMTP carried it, CRLF line ends
    # and all (swaks ends its body with two empty lines).
    assert attempt["body_sha256"] == hashlib.sha256((body + "\r\n" * 3).encode()).hexdigest(), attempt
    assert attempt["queue_id"] and attempt["queue_id"] in mx.log(), attempt
    shown = subprocess.run([binary(), "trap", "show", str(attempt["id"]), "--config", str(trap.config_path)],
                           capture_output=True, text=True, check=True).stdout
    assert "victim.example, other.example" in shown and "Cheap watches" in shown, shown
    csv = subprocess.run([binary(), "trap", "export", "--format", "csv", "--config", str(trap.config_path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0].startswith("id,time,client,") and len(csv) == 2 and SPAMMER in csv[1], csv
    assert trap.metrics()[("relay_milter_trap_messages_total", frozenset({("kind", "relay_attempt")}))] == 1
    stats = json.loads(subprocess.run([binary(), "stats", "--json", "--since", "24h", "--config", str(trap.config_path)],
                                      capture_output=True, text=True, check=True).stdout)
    assert stats["trap"]["attempts"] == 1 and stats["trap"]["perHour"][-1] == 1, stats["trap"]
    assert [(r["key"], r["count"]) for r in stats["trap"]["topClients"]] == [(SPAMMER, 1)], stats["trap"]
    assert [r["key"] for r in stats["trap"]["topDomains"]] == ["other.example", "victim.example"], stats["trap"]

    # The same client on the production listener: refused at MAIL, told why,
    # within the production daemon's 10 s look at the database.
    def refused():
        _, out = swaks(mx.port, to="bob@example.test", source=SPAMMER)
        return "Your host 127.0.0.9 tried to relay mail through this site" in out and out
    out = wait_until(refused, timeout=30)
    assert out and "<** 550 5.7.1" in out, production.log()[-2000:]

    # Mail for a local user on the trap listener is handled as configured
    # (local_mail = "deliver"): delivered, not recorded, its sender not trapped.
    # (The polls above that came before the production daemon's look were delivered.)
    delivered = len(inbox(mx))
    code, out = swaks(trap_port, to="bob@example.test", source=NEIGHBOUR)
    assert code == 0, out
    mx.wait_queue_empty()
    assert wait_until(lambda: len(inbox(mx)) == delivered + 1, timeout=20), mx.log()[-2000:]
    assert len(trap_list(trap)) == 1
    code, out = swaks(mx.port, to="bob@example.test", source=NEIGHBOUR)
    assert code == 0, out

    # Nothing ever left: the outside sink received zero bytes.
    assert sink.messages() == [], sink.text()[:2000]


def test_local_mail_can_be_discarded_too(start_milter, start_postfix, sink):
    production, trap, mx, trap_port = start_side_by_side(start_milter, start_postfix, trap_extra='local_mail = "discard"\n')
    code, out = swaks(trap_port, to="bob@example.test", source=NEIGHBOUR)
    assert code == 0, out
    mx.wait_queue_empty()
    assert "milter-discard" in mx.log() and inbox(mx) == [], mx.log()[-2000:]
    assert trap_list(trap) == []
    assert trap.metrics()[("relay_milter_trap_messages_total", frozenset({("kind", "local")}))] == 1
    assert sink.messages() == []


def test_a_trap_named_like_every_listener_is_refused(workdir):
    config = workdir / "trap.toml"
    for names, said in ((["MTA"], "every listener of a stock Sendmail"), ([], "the trap would be every listener")):
        config.write_text('[trap]\nenabled = true\ndaemon_names = [' + ", ".join(f'"{n}"' for n in names) + ']\n')
        result = subprocess.run([binary(), "check-config", "--config", str(config)], capture_output=True, text=True)
        assert result.returncode == 78 and f"{config}:3" in result.stderr and said in result.stderr, result.stderr


def flood(trap_port, messages, sessions=2, recipients=1):
    """Postfix's load client, smtp-source, from 127.0.0.1 (which these traps do
    not trust): `messages` relay attempts; returns the running process."""
    return subprocess.Popen(["smtp-source", "-s", str(sessions), "-m", str(messages), "-r", str(recipients),
                             "-f", "spammer@spam.example", "-t", "victim@victim.example", "-M", "spam.example",
                             f"127.0.0.1:{trap_port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def untrusting_side_by_side(start_milter, start_postfix, trap_extra=""):
    """As start_side_by_side, with a trap that trusts no client smtp-source can be."""
    production = start_milter(config_text(sections='[probe]\nenabled = false\n'), name="production")
    trap_socket = f"inet:{free_port()}@127.0.0.1"
    trap = start_milter(config_text(socket=trap_socket, trusted=("127.0.0.2/32",), sections=(
        f'[probe]\nenabled = false\n[cache]\npath = "{production.database}"\n[trap]\nenabled = true\n' + trap_extra)),
        name="trap", socket=trap_socket)
    trap_port = free_port()
    snippet = subprocess.run([binary(), "postfix-snippet", "--trap", "--listen", f"127.0.0.1:{trap_port}",
                              "--config", str(trap.config_path)], capture_output=True, text=True, check=True).stdout
    mx = start_postfix(name="mx", milter=production.postfix_spec, mynetworks="127.0.0.1/32", master_extra="\n" + snippet)
    return production, trap, mx, trap_port


def test_a_killed_trap_tempfails_and_loses_no_evidence(start_milter, start_postfix, sink):
    """kill -9 while spam flows in: Postfix tempfails what was in flight and
    what comes after (the snippet's milter_default_action), nothing leaves,
    and every message Postfix discarded for the trap before the kill is in
    the evidence, which a restarted trap keeps adding to."""
    production, trap, mx, trap_port = untrusting_side_by_side(start_milter, start_postfix)
    source = flood(trap_port, 400)
    assert wait_until(lambda: trap.log().count('msg="relay attempt trapped"') >= 30, timeout=60), trap.log()[-2000:]
    trap.stop(sig=signal.SIGKILL)
    output, _ = source.communicate(timeout=120)
    # smtp-source gives up at the first refusal: the messages in flight at the kill.
    assert "451 4.7.1 Service unavailable - try again later" in output, output[-2000:]
    code, out = swaks(trap_port, to="victim@victim.example", source=SPAMMER)
    assert code != 0 and re.search(r"<\*\* 4\d\d 4\.7\.1 Service unavailable", out), out
    mx.wait_queue_empty(timeout=60)
    log = mx.log()
    assert re.search(r"milter-reject: END-OF-MESSAGE .*4\.7\.1 Service unavailable", log), log[-3000:]
    discarded = set(re.findall(r"\]: ([0-9A-F]+): milter-discard:", log))
    assert len(discarded) >= 30, log[-3000:]
    recorded = {attempt["queue_id"] for attempt in trap_list(trap)}
    assert discarded <= recorded, sorted(discarded - recorded)
    assert sink.messages() == [], sink.text()[:2000]

    trap.start()
    code, out = swaks(trap_port, to="victim@victim.example", source=SPAMMER)
    assert code == 0, out
    assert wait_until(lambda: len(trap_list(trap)) == len(recorded) + 1, timeout=20), trap.log()[-2000:]
    mx.wait_queue_empty()
    assert sink.messages() == []


def test_a_flood_keeps_the_evidence_within_its_bounds(start_milter, start_postfix, sink):
    """10,000 trapped messages with max_records = 100: the store holds the
    newest 100, numbered up to 10,000, and nothing leaves."""
    production, trap, mx, trap_port = untrusting_side_by_side(start_milter, start_postfix, trap_extra="max_records = 100\n")
    source = flood(trap_port, 10_000, sessions=4)
    output, _ = source.communicate(timeout=900)
    assert source.returncode == 0, output[-2000:]
    mx.wait_queue_empty(timeout=120)
    attempts = trap_list(trap)
    assert len(attempts) == 100, len(attempts)
    assert attempts[0]["id"] == 10_000 and attempts[-1]["id"] == 9_901, (attempts[0], attempts[-1])
    assert trap.metrics()[("relay_milter_trap_messages_total", frozenset({("kind", "relay_attempt")}))] == 10_000
    assert sink.messages() == []


def test_nmap_calls_the_trap_an_open_relay_and_nothing_leaves(start_milter, start_postfix, sink):
    production, trap, mx, trap_port = start_side_by_side(start_milter, start_postfix)
    verdict = nmap_open_relay(trap_port)  # from 127.0.0.2, which the trap does not trust
    assert verdict.startswith("Server is an open relay"), verdict
    mx.wait_queue_empty()
    # nmap tests RCPT only: no message, so no evidence and no verdict.
    assert trap_list(trap) == []
    assert sink.messages() == []


def test_a_sendmail_trap_takes_relays_and_relays_nothing(start_milter, start_sendmail, sink):
    """The Sendmail equivalent: a Sendmail of its own for the trap, built
    with the shipped relay-milter-trap.m4 (promiscuous_relay, the trap's
    daemon name, F=T), beside a production Sendmail with relay-milter.m4."""
    production = start_milter(config_text(sections='[probe]\nenabled = false\n'), name="production")
    trap_socket = f"inet:{free_port()}@127.0.0.1"
    trap = start_milter(trap_config(production.database, trap_socket), name="trap", socket=trap_socket)
    trap_mta = start_sendmail(name="trap-sendmail", milter=trap_socket, trap=True)
    mx = start_sendmail(name="mx-sendmail", milter=production.socket)

    code, out = swaks(trap_mta.port, to="one@victim.example,two@other.example", source=SPAMMER, header="Subject: Cheap watches")
    assert code == 0, out
    assert wait_until(lambda: 'msg="relay attempt trapped"' in trap.log(), timeout=20), trap.log()[-2000:]
    assert "mta.daemon=relay-milter-trap" in trap.log()
    [attempt] = trap_list(trap)
    assert attempt["client"] == SPAMMER and attempt["domains"] == ["victim.example", "other.example"], attempt
    assert attempt["subject"] == "Cheap watches" and attempt["queue_id"] in trap_mta.log(), (attempt, trap_mta.log()[-2000:])
    trap_mta.wait_queue_empty()

    def refused():
        _, out = swaks(mx.port, to="bob@example.test", source=SPAMMER)
        return "Your host 127.0.0.9 tried to relay mail through this site" in out and out
    assert wait_until(refused, timeout=30), production.log()[-2000:]

    # relay-milter gone: F=T, Sendmail refuses for now; the trap never relays.
    trap.stop(sig=signal.SIGKILL)
    code, out = swaks(trap_mta.port, to="one@victim.example", source=SPAMMER)
    assert code != 0 and re.search(r"<\*\* 4\d\d", out), out
    trap_mta.wait_queue_empty()
    assert sink.messages() == [], sink.text()[:2000]
