"""Trap mode end to end: one real Postfix with a production smtpd and a trap
smtpd side by side (the trap's master.cf service is the one
`relay-milter postfix-snippet --trap` prints), each served by its own
relay-milter process over the same verdict database. Relay attempts on the
trap are accepted, recorded and discarded: the outside sink gets nothing.
Everything on loopback."""
import hashlib
import json
import subprocess

from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import binary, config_text
from mailharness.swaks import swaks

SPAMMER = "127.0.0.9"     # untrusted: relay-milter trusts 127.0.0.1 only
NEIGHBOUR = "127.0.0.10"  # untrusted too, mails a local user only


def trap_config(database, socket, extra=""):
    return config_text(socket=socket, sections=(
        '[probe]\nenabled = false\n'
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
