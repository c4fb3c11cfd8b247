"""relay-milter inside a real Postfix. Postfix here trusts all of
127.0.0.0/8 (mynetworks), so it would relay for 127.0.0.2 on its own;
relay-milter trusts only 127.0.0.1 and must stop it."""
import signal
import subprocess
import time

from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import binary, config_text
from mailharness.swaks import swaks

UNTRUSTED = "127.0.0.2"
TRUSTED = "127.0.0.1"


def deliveries_settled(postfix):
    assert postfix.wait_queue_empty(), f"queue not empty:\n{postfix.log()[-2000:]}"


def test_local_recipient_is_delivered(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(postfix.port, to="bob@example.test", source=UNTRUSTED)
    assert code == 0, out
    deliveries_settled(postfix)
    delivered = postfix.delivered()
    assert len(delivered) == 1
    assert "X-Relay-Milter" not in delivered[0]
    assert sink.recipients() == []
    assert "decision.reason=relay.local_recipient" in milter.decisions(at_least=1)[0]
    assert "mta.transport=virtual" in milter.decisions(at_least=1)[0]


def test_relay_from_untrusted_client_is_refused_with_our_text(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code != 0
    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)" in out
    time.sleep(1.5)  # give a wrongly queued message time to reach the sink
    deliveries_settled(postfix)
    assert sink.recipients() == []
    assert "milter-reject: RCPT from unknown[127.0.0.2]" in postfix.log()
    line = milter.decisions(at_least=1)[0]
    for field in ("client.address=127.0.0.2", "decision.action=reject", "decision.reason=relay.denied",
                  "mail.rcpt=<victim@elsewhere.example>", "mail.from=<sender@elsewhere.example>"):
        assert field in line, line


def test_routing_tricks_are_refused_through_postfix(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    tricks = ["relaytest%nmap.scanme.org@mx.example.test", "nmap.scanme.org!relaytest@example.test",
              '"relaytest@nmap.scanme.org"@example.test']
    for rcpt in tricks:
        code, out = swaks(postfix.port, to=rcpt, source=UNTRUSTED)
        assert code != 0, out
        assert "<** 550 5.7.1" in out and "relay.routed_address" in out, out
    # A percent sign in the reply reaches the client as one percent sign.
    assert "<relaytest%nmap.scanme.org@mx.example.test>: Relay access denied" in swaks(postfix.port, to=tricks[0], source=UNTRUSTED)[1]
    time.sleep(1.5)
    deliveries_settled(postfix)
    assert sink.recipients() == [] and postfix.delivered() == []


def test_relay_from_trusted_network_reaches_the_sink(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(postfix.port, to="friend@elsewhere.example", source=TRUSTED)
    assert code == 0, out
    assert wait_until(lambda: sink.recipients() == ["<friend@elsewhere.example>"]), sink.text()
    assert "decision.reason=relay.trusted_network" in milter.decisions(at_least=1)[0]


def test_tag_only_mode_delivers_with_our_header(start_milter, start_postfix, sink):
    milter = start_milter(config_text(mode="tag-only"))
    postfix = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code == 0, out
    assert wait_until(lambda: sink.recipients() == ["<victim@elsewhere.example>"]), sink.text()
    assert ("X-Relay-Milter: reject; reason=relay.denied; rcpt=<victim@elsewhere.example>; client=127.0.0.2"
            in sink.text()), sink.text()
    line = milter.decisions(at_least=1)[0]
    assert "decision.action=tag" in line and "decision.would=reject" in line


def test_a_quoted_local_part_cannot_forge_fields_of_our_header(start_milter, start_postfix, sink):
    milter = start_milter(config_text(mode="tag-only"))
    postfix = start_postfix(milter=milter.postfix_spec)
    forged = '"x; reason=relay.trusted_network; client=127.0.0.1"@elsewhere.example'
    code, out = swaks(postfix.port, to=forged, source=UNTRUSTED)
    assert code == 0, out
    assert wait_until(lambda: "X-Relay-Milter:" in sink.text()), sink.text()
    [header] = [line for line in sink.text().splitlines() if line.startswith("X-Relay-Milter:")]
    assert header == "X-Relay-Milter: reject; reason=relay.denied; rcpt_domain=elsewhere.example; client=127.0.0.2", header


def test_log_only_mode_changes_nothing_but_logs(start_milter, start_postfix, sink):
    milter = start_milter(config_text(mode="log-only"))
    postfix = start_postfix(milter=milter.postfix_spec)
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code == 0, out
    assert wait_until(lambda: sink.recipients() == ["<victim@elsewhere.example>"])
    assert "X-Relay-Milter" not in sink.text()
    line = milter.decisions(at_least=1)[0]
    assert "decision.action=accept" in line and "decision.would=reject" in line and "decision.verdict=deny" in line


def test_milter_down_means_tempfail_and_nothing_lost(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    assert milter.stop() == 0
    for rcpt, source in (("bob@example.test", UNTRUSTED), ("friend@elsewhere.example", TRUSTED)):
        code, out = swaks(postfix.port, to=rcpt, source=source)
        assert code != 0, out
        assert "<** 451 4.7.1" in out or "<** 421 4.7.0" in out, out
    time.sleep(1.5)
    deliveries_settled(postfix)
    assert sink.recipients() == [] and postfix.delivered() == []
    # Back up: the same messages now go through; the client retried, nothing was lost.
    start_milter(config_text(), name="milter2", socket=milter.socket)
    assert swaks(postfix.port, to="bob@example.test", source=UNTRUSTED)[0] == 0
    assert swaks(postfix.port, to="friend@elsewhere.example", source=TRUSTED)[0] == 0
    assert wait_until(lambda: sink.recipients() == ["<friend@elsewhere.example>"])
    assert wait_until(lambda: len(postfix.delivered()) == 1)


def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    milter.write_config(config_text(mode="tag-only"))
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: 'msg="config reloaded"' in milter.log())
    assert swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)[0] == 0
    assert wait_until(lambda: "X-Relay-Milter: reject" in sink.text())

    milter.write_config("[policy]\nmode = \"sometimes\"\n")
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: 'msg="config reload refused; keeping the running config"' in milter.log())
    assert "relay-milter.toml:2: policy.mode" in milter.log()
    assert milter.proc.poll() is None
    assert swaks(postfix.port, to="second@elsewhere.example", source=UNTRUSTED)[0] == 0  # still tag-only

    # A half-typed edit, of the kind that once aborted the TOML parser inside
    # the process: an error with its line, and the milter keeps serving.
    milter.write_config('[policy]\nmode = "enforce"\n[\n')
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: "relay-milter.toml:3: TOML syntax: a table header must start with a name" in milter.log())
    assert milter.proc.poll() is None
    assert swaks(postfix.port, to="third@elsewhere.example", source=UNTRUSTED)[0] == 0  # still tag-only
    assert milter.stop() == 0


def test_sigterm_stops_gracefully(start_milter):
    milter = start_milter(config_text())
    assert milter.stop(signal.SIGTERM) == 0
    assert 'msg=stopped exit.code=0' in milter.log()
    milter2 = start_milter(config_text(), name="again")
    assert milter2.stop(signal.SIGINT) == 0


def test_unix_socket_with_postfix_group(start_milter, start_postfix, workdir, sink):
    socket_path = workdir / "run" / "relay-milter.sock"
    socket_path.parent.mkdir()
    socket_path.parent.chmod(0o755)
    config = "[milter]\nsocket_group = \"postfix\"\n" + config_text()
    start_milter(config, socket=f"unix:{socket_path}")
    st = socket_path.stat()
    assert oct(st.st_mode & 0o777) == oct(0o660)
    import grp
    assert grp.getgrgid(st.st_gid).gr_name == "postfix"
    postfix = start_postfix(milter=f"unix:{socket_path}")
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied" in out, out + postfix.log()[-1500:]
    assert swaks(postfix.port, to="bob@example.test", source=UNTRUSTED)[0] == 0


def test_over_a_unix_socket_postfix_skips_data_and_the_queue_id_still_reaches_the_log(start_milter, start_postfix, sink):
    # Over a unix socket relay-milter asks Postfix not to send DATA at all; the
    # queue ID it would have carried comes again at end of message.
    milter = start_milter(config_text(mode="tag-only"), name="tagging", unix=True)
    postfix = start_postfix(milter=milter.socket)
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert code == 0, out + postfix.log()[-1500:]
    assert milter.logged('msg="message tagged"'), milter.log()
    line = next(line for line in milter.log().splitlines() if 'msg="message tagged"' in line)
    queue_id = line.split("queue.id=")[1].split()[0]
    assert queue_id and queue_id in postfix.log(), line


def test_started_as_root_it_runs_as_the_configured_user(start_milter, start_postfix, workdir, sink):
    run_dir = workdir / "run"
    run_dir.mkdir()
    run_dir.chmod(0o755)
    socket_path = run_dir / "relay-milter.sock"
    pid_file = run_dir / "relay-milter.pid"
    config = ('[milter]\nsocket_group = "postfix"\n[service]\nuser = "nobody"\n'
              f'pid_file = "{pid_file}"\n' + config_text())
    milter = start_milter(config, socket=f"unix:{socket_path}")
    assert int(pid_file.read_text()) == milter.proc.pid
    status = dict(line.split(":\t", 1) for line in open(f"/proc/{milter.proc.pid}/status").read().splitlines() if ":\t" in line)
    assert status["Uid"].split() == ["65534"] * 4, status["Uid"]
    assert status["Gid"].split()[0] == "65534"
    assert 'msg="dropped privileges" service.user=nobody' in milter.log()
    postfix = start_postfix(milter=f"unix:{socket_path}")
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied" in out, out
    # Nothing it does later needs root: a reload (config and verdict database
    # read again) works as the unprivileged user.
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: 'msg="config reloaded"' in milter.log())
    assert wait_until(lambda: milter.log().count('msg="verdict cache loaded"') >= 2)
    assert "level=error" not in milter.log(), milter.log()
    assert milter.stop() == 0


def test_postfix_snippet_attaches_postfix(start_milter, start_postfix, sink):
    """`relay-milter postfix-snippet` prints main.cf lines; a Postfix given
    exactly those (and nothing else about milters) is guarded."""
    socket = f"inet:{free_port()}@127.0.0.1"
    milter = start_milter(config_text(socket=socket), socket=socket)
    result = subprocess.run([binary(), "postfix-snippet", "--config", str(milter.config_path)],
                            capture_output=True, text=True, check=True)
    settings = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if line and not line.startswith("#"))
    assert set(settings) == {"smtpd_milters", "milter_default_action", "milter_protocol", "milter_connect_macros"}, settings
    postfix = start_postfix(extra=settings)
    code, out = swaks(postfix.port, to="victim@elsewhere.example", source=UNTRUSTED)
    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)" in out, out
    assert swaks(postfix.port, to="bob@example.test", source=UNTRUSTED)[0] == 0
    assert wait_until(lambda: len(postfix.delivered()) == 1)
    assert milter.stop() == 0  # and down, Postfix tempfails as the snippet says
    code, out = swaks(postfix.port, to="bob@example.test", source=UNTRUSTED)
    assert "<** 451 4.7.1" in out or "<** 421 4.7.0" in out, out
