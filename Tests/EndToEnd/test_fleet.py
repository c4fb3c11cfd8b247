"""Verdicts shared by a fleet through a real PostgreSQL server (issue 8,
point 1): two relay-milter instances, each in front of its own Postfix, share
one database. The suspects are real Postfix open relays on their own
loopback addresses, as in test_enforcement."""
import concurrent.futures
import json
import subprocess
import time
from pathlib import Path

import pytest

from mailharness.ports import free_port, wait_until
from mailharness.postgres import PostgresServer
from mailharness.relaymilter import binary, cached_verdicts, config_text
from mailharness.swaks import swaks


@pytest.fixture
def postgres(workdir):
    server = PostgresServer(workdir / "pg").start()
    yield server
    server.stop()


def fleet_config(workdir, name, postgres, probe_port):
    return config_text(sections=(
        '[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\n'
        f'port = {probe_port}\nsource_address = "127.0.0.4"\nnetwork_interval = 0\ncommand_timeout = 5\n'
        f'[cache]\npath = "{workdir}/{name}/verdicts.sqlite"\n' + postgres.config_section(name)))


def metric(milter, name, **labels):
    return milter.metrics().get((name, frozenset(labels.items())), 0)


def probe_tests(milter):
    return sum(v for (name, _), v in milter.metrics().items() if name == "relay_milter_probe_tests_total")


def connected(milter):
    return metric(milter, "relay_milter_shared_store_up") == 1


SUSPECT = "127.0.0.3"
LAST_EXCHANGE = "relay_milter_shared_store_last_exchange_timestamp_seconds"


@pytest.fixture
def fleet(workdir, postgres, start_milter, start_postfix, sink):
    """Two instances (a, b) on one database, a guarded Postfix before each,
    and an open-relay suspect, a Postfix on 127.0.0.3."""
    suspect = start_postfix(name="suspect", listen=SUSPECT, mynetworks="0.0.0.0/0")
    milters, guarded = {}, {}
    for name in ("a", "b"):
        milters[name] = start_milter(fleet_config(workdir, name, postgres, suspect.port), name=name)
        guarded[name] = start_postfix(name=f"guarded-{name}", milter=milters[name].postfix_spec)
    assert wait_until(lambda: all(connected(m) for m in milters.values()), timeout=30), milters["a"].log()
    return milters, guarded


def test_schema_is_created_once_and_versioned(fleet, postgres):
    milters, _ = fleet
    assert postgres.query("SELECT string_agg(version::text, ',' ORDER BY version) FROM relay_milter_schema") == "1,2"
    for m in milters.values():
        assert "shared.schema=2" in m.log()
    assert postgres.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'relay_milter_%'") == "5"


def refused_as_open_relay(out, ip):
    return f"<** 550 5.7.1 Your host {ip} was found to be an open relay" in out


def test_a_host_tested_by_one_instance_is_refused_by_the_other_without_a_second_test(fleet, postgres):
    milters, guarded = fleet
    a, b = milters["a"], milters["b"]
    code, out = swaks(guarded["a"].port, to="bob@example.test", source=SUSPECT)
    assert code == 0, out
    assert wait_until(lambda: probe_tests(a) == 1, timeout=60), a.log()
    # b hears of it through the database (a notification), and keeps it in memory.
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="received") == 1,
                      timeout=15), b.log()
    code, out = swaks(guarded["b"].port, to="bob@example.test", source=SUSPECT)
    assert code != 0 and refused_as_open_relay(out, SUSPECT), out
    assert "decision.reason=host.open_relay" in b.log()
    assert probe_tests(b) == 0 and probe_tests(a) == 1
    assert metric(a, "relay_milter_probe_claims_total", result="claimed") == 1
    assert postgres.query(f"SELECT verdict, instance, tests_run FROM relay_milter_verdict WHERE host = '{SUSPECT}'") == "open|a|20"
    assert postgres.query("SELECT count(*) FROM relay_milter_test_claim") == "0"  # released after the verdict

    # A clean stop shares the last rollups; `stats --fleet` on either instance sees both.
    assert a.stop() == 0 and b.stop() == 0
    result = subprocess.run([binary(), "stats", "--fleet", "--json", "--config", str(a.config_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    instances = {i["name"]: i for i in report["instances"]}
    assert set(instances) == {"a", "b"}, report
    assert instances["a"]["refused"] == 0 and instances["b"]["refused"] == 1, report
    assert {"action": "reject", "reason": "host.open_relay", "count": 1} in report["window"], report
    text = subprocess.run([binary(), "stats", "--fleet", "--config", str(b.config_path)], capture_output=True, text=True)
    assert "2 instance(s) wrote rollups" in text.stdout and "host.open_relay" in text.stdout, text.stdout + text.stderr


def test_a_host_both_see_at_once_is_tested_once(fleet, postgres):
    milters, guarded = fleet
    a, b = milters["a"], milters["b"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sent = list(pool.map(lambda name: swaks(guarded[name].port, to="bob@example.test", source=SUSPECT), "ab"))
    # On a loaded machine one client may arrive only after the other
    # instance's test is over and shared: its instance then knows the host at
    # connect, refuses it at MAIL FROM and has nothing to claim.
    late = [out for code, out in sent if code != 0]
    assert all(refused_as_open_relay(out, SUSPECT) for out in late) and len(late) < 2, sent
    assert wait_until(lambda: all(metric(m, "relay_milter_cache_entries", verdict="open") == 1 for m in (a, b)),
                      timeout=60), a.log() + b.log()
    assert probe_tests(a) + probe_tests(b) == 1
    claims = {result: metric(a, "relay_milter_probe_claims_total", result=result)
              + metric(b, "relay_milter_probe_claims_total", result=result)
              for result in ("claimed", "held_elsewhere", "known", "unavailable")}
    assert claims["claimed"] == 1 and claims["unavailable"] == 0, claims
    assert claims["held_elsewhere"] + claims["known"] == (0 if late else 1), claims
    # Both refuse it now.
    for name in "ab":
        code, out = swaks(guarded[name].port, to="bob@example.test", source=SUSPECT)
        assert refused_as_open_relay(out, SUSPECT), out


def outbox(milter):
    import sqlite3
    with sqlite3.connect(milter.root / "verdicts.sqlite") as db:
        return [row[0] for row in db.execute("SELECT host FROM shared_outbox")]


def test_postgres_outage_loses_nothing(fleet, postgres):
    milters, guarded = fleet
    a, b = milters["a"], milters["b"]
    postgres.stop()
    assert wait_until(lambda: metric(a, "relay_milter_shared_store_up") == 0, timeout=30)
    # The last exchange before the outage; it must not advance during it.
    exchanged = metric(a, LAST_EXCHANGE)
    assert 0 < time.time() - exchanged < 60, exchanged
    # Mail keeps flowing, and a new host is tested here (no claim possible) and enforced from memory.
    code, out = swaks(guarded["a"].port, to="carol@example.test", source=SUSPECT)
    assert code == 0, out
    assert wait_until(lambda: probe_tests(a) == 1, timeout=60), a.log()
    assert metric(a, "relay_milter_probe_claims_total", result="unavailable") == 1
    code, out = swaks(guarded["a"].port, to="carol@example.test", source=SUSPECT)
    assert refused_as_open_relay(out, SUSPECT), out
    assert wait_until(lambda: SUSPECT in guarded["a"].log() and len(guarded["a"].delivered()) == 1)
    # The verdict waits in a's own database, and a restart keeps it there.
    assert wait_until(lambda: outbox(a) == [SUSPECT], timeout=10)
    assert wait_until(lambda: metric(a, "relay_milter_shared_store_errors_total", kind="connect") >= 2, timeout=15)
    assert a.log().count('msg="shared verdict database unreachable') == 1  # once, for many retries
    assert metric(a, LAST_EXCHANGE) == exchanged
    assert a.stop() == 0
    a.start()
    assert outbox(a) == [SUSPECT]

    back = time.time()
    postgres.start()
    assert wait_until(lambda: connected(a) and connected(b), timeout=30), a.log()
    assert wait_until(lambda: metric(a, LAST_EXCHANGE) >= int(back) and metric(b, LAST_EXCHANGE) >= int(back), timeout=15)
    assert wait_until(lambda: outbox(a) == [], timeout=15)
    assert postgres.query(f"SELECT verdict, instance FROM relay_milter_verdict WHERE host = '{SUSPECT}'") == "open|a"
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="received") == 1,
                      timeout=15), b.log()
    code, out = swaks(guarded["b"].port, to="carol@example.test", source=SUSPECT)
    assert refused_as_open_relay(out, SUSPECT), out
    assert probe_tests(b) == 0
    assert 'msg="shared verdict database reachable again' in b.log()


def test_a_database_from_a_newer_release_is_refused(workdir, postgres, start_milter):
    postgres.query("SET ROLE relay_milter; CREATE TABLE relay_milter_schema ("
                   "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());"
                   "INSERT INTO relay_milter_schema (version) VALUES (99)")
    milter = start_milter(fleet_config(workdir, "solo", postgres, 25), name="solo")
    assert wait_until(lambda: "schema version 99" in milter.log(), timeout=20), milter.log()
    assert metric(milter, "relay_milter_shared_store_up") == 0
    assert postgres.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'relay_milter_%'") == "1"


def test_the_last_releases_database_is_migrated_with_its_verdicts(workdir, postgres, start_milter):
    """Fixtures/shared-schema-1.sql: the database relay-milter 0.1.0 left,
    two verdicts set by hand. This release migrates it to schema 2 and
    reads the verdicts from it."""
    postgres.load(Path(__file__).parent / "Fixtures" / "shared-schema-1.sql")
    # The rows' expiry moved ahead, so that the test does not age with the fixture.
    postgres.query("UPDATE relay_milter_verdict SET expires_at = now() + interval '30 days'")
    milter = start_milter(fleet_config(workdir, "mx2", postgres, 25), name="mx2")
    assert wait_until(lambda: connected(milter), timeout=30), milter.log()
    assert "shared.schema=2" in milter.log() and "shared.schema_migrated_from=1" in milter.log()
    assert postgres.query("SELECT string_agg(version::text, ',' ORDER BY version) FROM relay_milter_schema") == "1,2"
    assert postgres.query("SELECT string_agg(host || ' ' || verdict || ' ' || instance, ',' ORDER BY host) FROM relay_milter_verdict") \
        == "192.0.2.7 open mx1,2001:db8::25 closed mx1"
    verdicts = lambda: {v["host"]: (v["verdict"], v["source"]) for v in cached_verdicts(milter.config_path)}
    assert wait_until(lambda: verdicts() == {"192.0.2.7": ("open", "manual"), "2001:db8::25": ("closed", "manual")},
                      timeout=15), verdicts()


def test_a_manual_listing_reaches_every_instance(fleet, postgres):
    milters, guarded = fleet
    a, b = milters["a"], milters["b"]
    result = subprocess.run([binary(), "cache", "set", "127.0.0.9", "open", "--config", str(a.config_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "queued for the fleet's shared database" in result.stdout, result.stderr
    assert wait_until(lambda: postgres.query("SELECT verdict, source FROM relay_milter_verdict WHERE host = '127.0.0.9'")
                      == "open|manual", timeout=15)
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="received") == 1, timeout=15)
    code, out = swaks(guarded["b"].port, to="bob@example.test", source="127.0.0.9")
    assert refused_as_open_relay(out, "127.0.0.9"), out
    assert probe_tests(a) == probe_tests(b) == 0


def test_a_claim_holds_off_other_testers_until_it_lapses(fleet, postgres):
    """An instance that crashed mid-test leaves its claim behind: the others
    leave the host alone until the claim's expiry, then test it."""
    milters, guarded = fleet
    a = milters["a"]
    # Long enough to hold however slowly this machine reaches the claim; the
    # lapse is then made by moving the expiry into the past, not by waiting.
    postgres.query("INSERT INTO relay_milter_test_claim (host, instance, expires_at) "
                   f"VALUES ('{SUSPECT}', 'crashed', now() + interval '10 minutes')")
    assert swaks(guarded["a"].port, to="bob@example.test", source=SUSPECT)[0] == 0
    assert wait_until(lambda: metric(a, "relay_milter_probe_claims_total", result="held_elsewhere") == 1, timeout=15)
    assert probe_tests(a) == 0 and "fleet.instance=crashed" in a.log()
    assert postgres.query(f"SELECT instance FROM relay_milter_test_claim WHERE host = '{SUSPECT}'") == "crashed"
    postgres.query("UPDATE relay_milter_test_claim SET expires_at = now() - interval '1 second'")
    assert swaks(guarded["a"].port, to="bob@example.test", source=SUSPECT)[0] == 0
    assert wait_until(lambda: probe_tests(a) == 1, timeout=60), a.log()
    assert metric(a, "relay_milter_probe_claims_total", result="claimed") == 1
    assert postgres.query("SELECT count(*) FROM relay_milter_test_claim") == "0"


def test_what_the_shared_table_may_not_say_is_refused(fleet, postgres):
    """Whoever can write the shared table must not get any address listed
    fleet-wide, or for ever: a verdict relay-milter does not know, an address
    not in its canonical spelling (a network, a name) or an expiry beyond the
    longest TTL is refused, counted and logged; a sound one still arrives."""
    milters, guarded = fleet
    b = milters["b"]
    rows = [("127.0.0.9", "open", "now() + interval '1 day'"),          # sound
            ("127.0.0.10", "open", "'2106-02-07 06:28:15+00'"),         # for ever
            ("127.0.0.11", "blocked", "now() + interval '1 day'"),      # no such verdict
            ("127.0.0.0/24", "open", "now() + interval '1 day'"),       # a network
            ("127.000.000.012", "open", "now() + interval '1 day'")]    # not canonical
    values = ", ".join(f"('{host}', '{verdict}', now(), {expires}, '{{}}', 20, '', 'written by hand', 'manual', 'intruder')"
                       for host, verdict, expires in rows)
    postgres.query("INSERT INTO relay_milter_verdict (host, verdict, tested_at, expires_at, accepted_tests, tests_run, "
                   f"banner, detail, source, instance) VALUES {values}")
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="received") == 1, timeout=15)
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="refused") == 4, timeout=15)
    for refusal in ("bad_times", "unknown_verdict", "bad_host"):
        assert b.logged('msg="verdict from the shared database refused"', f"fleet.refusal={refusal}"), b.log()[-3000:]
    # Every read goes back over the latest changes: a refused row is counted
    # and logged once, not again at each read (it once was, every few seconds).
    postgres.query("INSERT INTO relay_milter_verdict (host, verdict, tested_at, expires_at, accepted_tests, tests_run, "
                   "banner, detail, source, instance) VALUES ('127.0.0.13', 'closed', now(), now() + interval '1 day', "
                   "'{}', 20, '', 'written by hand', 'manual', 'intruder')")
    assert wait_until(lambda: metric(b, "relay_milter_shared_store_verdicts_total", direction="received") == 2, timeout=15)
    assert metric(b, "relay_milter_shared_store_verdicts_total", direction="refused") == 4
    assert b.log().count('msg="verdict from the shared database refused"') == 4, b.log()[-3000:]
    assert refused_as_open_relay(swaks(guarded["b"].port, to="bob@example.test", source="127.0.0.9")[1], "127.0.0.9")
    code, out = swaks(guarded["b"].port, to="bob@example.test", source="127.0.0.10")
    assert not refused_as_open_relay(out, "127.0.0.10"), out


def certificate_authority(directory):
    """A private CA and a certificate it signed for 127.0.0.1 (as an IP address SAN)."""
    directory.mkdir()
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=relay-milter test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (directory / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.pem")
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def test_required_tls_verifies_the_server(workdir, start_milter):
    """tls = "require" (the default for a host not on loopback) verifies the
    server's certificate: against the system's roots a private CA's is refused
    and nothing is exchanged; with ca_file naming that CA the connection is
    made, encrypted."""
    ca, certificate, key = certificate_authority(workdir / "tls")
    server = PostgresServer(workdir / "pg-tls").use_tls(certificate, key).start()
    try:
        def config(name, ca_file):
            section = server.config_section(name).replace('tls = "disable"\n', 'tls = "require"\n' + (
                f'ca_file = "{ca_file}"\n' if ca_file else ""))
            return config_text(sections=f'[probe]\nenabled = false\n[cache]\npath = "{workdir}/{name}/verdicts.sqlite"\n' + section)
        unverified = start_milter(config("unverified", None), name="unverified")
        assert wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in unverified.log(), timeout=20), unverified.log()
        assert metric(unverified, "relay_milter_shared_store_up") == 0
        verified = start_milter(config("verified", ca), name="verified")
        assert wait_until(lambda: connected(verified), timeout=30), verified.log()[-3000:]
        assert server.query("SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                            "WHERE a.usename = 'relay_milter'") == "t"
        assert metric(unverified, "relay_milter_shared_store_up") == 0
    finally:
        server.stop()


TESTED = "127.0.0.5"  # a host the admin answers for, under a registered test


def registered_fleet(workdir, postgres, start_milter, start_postfix, window="5m", **tested_settings):
    """Instances a and b with [registered] on, each before its own Postfix,
    and an open relay on 127.0.0.5 that hands its mail to b's Postfix: a
    test started at a comes back through b."""
    milters, homes = {}, {}
    for name in ("a", "b"):
        milters[name] = start_milter(config_text(sections=(
            f'[registered]\nenabled = true\nnetworks = ["{TESTED}/32"]\nwindow = "{window}"\n'
            '[probe]\nenabled = false\nsource_address = "127.0.0.2"\n'
            f'[cache]\npath = "{workdir}/{name}/verdicts.sqlite"\n' + postgres.config_section(name))), name=name)
        homes[name] = start_postfix(name=f"home-{name}", milter=milters[name].postfix_spec)
    assert wait_until(lambda: all(connected(m) for m in milters.values()), timeout=30), milters["a"].log()
    settings = {"relayhost": f"[127.0.0.1]:{homes['b'].port}", "smtp_bind_address": TESTED}
    settings.update(tested_settings)
    tested = start_postfix(name="tested", listen=TESTED, mynetworks="0.0.0.0/0", local_domain="tested.example",
                           hostname="mx.tested.example", extra=settings)
    return milters, homes, tested


def probe_registered(milter, target, *args):
    return subprocess.run([binary(), "probe", "--registered", "--config", str(milter.config_path), *args, target],
                          capture_output=True, text=True, timeout=300)


def registered_outcomes(milter, outcome):
    return metric(milter, "relay_milter_registered_tests_total", outcome=outcome)


def test_a_registered_test_started_at_one_instance_comes_back_through_another(workdir, postgres, start_milter, start_postfix,
                                                                                sink):
    milters, homes, tested = registered_fleet(workdir, postgres, start_milter, start_postfix)
    a, b = milters["a"], milters["b"]
    result = probe_registered(a, f"{TESTED}:{tested.port}")
    assert result.returncode == 0, result.stderr
    assert "Result: open, confirmed by delivery: the message came back from 127.0.0.5" in result.stdout, \
        result.stdout + result.stderr + b.log()[-3000:]
    # The command shared the alias before sending, and b copies it at PostgreSQL's notification. On
    # loopback the message can still outrun the copy: b then tempfails it (never refuses it) and takes
    # the tested host's retry.
    assert "unknown or expired test address" not in b.log() and "5.1.1" not in homes["b"].log(), homes["b"].log()
    assert registered_outcomes(b, "delivered") == 1 and registered_outcomes(a, "delivered") == 0
    assert wait_until(lambda: "milter-discard" in homes["b"].log(), timeout=10)
    assert postgres.query("SELECT state, delivered_from, instance FROM relay_milter_registered_test") == "delivered|127.0.0.5|a"
    # The verdict b set reaches a as any shared verdict does.
    assert wait_until(lambda: postgres.query(f"SELECT verdict, source, instance FROM relay_milter_verdict WHERE host = '{TESTED}'")
                      == "open|registered|b", timeout=15)
    shown = lambda: subprocess.run([binary(), "cache", "show", TESTED, "--config", str(a.config_path)],
                                   capture_output=True, text=True).stdout
    assert wait_until(lambda: "source:   registered" in shown() and ": delivered (250 " in shown(), timeout=15), shown()


def test_a_window_ends_once_for_the_fleet(workdir, postgres, start_milter, start_postfix, sink):
    """The tested host discards the message: when the window ends, one
    instance settles it accepted_undelivered for all."""
    milters, homes, tested = registered_fleet(workdir, postgres, start_milter, start_postfix, window="1m",
                                              transport_maps="inline:{ example.test=discard: }")
    a, b = milters["a"], milters["b"]
    result = probe_registered(a, f"{TESTED}:{tested.port}", "--wait", "3s")
    assert result.returncode == 0 and "not back yet" in result.stdout, result.stdout + result.stderr
    assert wait_until(lambda: postgres.query("SELECT state FROM relay_milter_registered_test") == "undelivered", timeout=90)
    assert wait_until(lambda: postgres.query(f"SELECT verdict, source FROM relay_milter_verdict WHERE host = '{TESTED}'")
                      == "accepted_undelivered|registered", timeout=15)
    # Both instances close windows every 10 s; the shared database lets one of them settle it.
    time.sleep(12)
    assert registered_outcomes(a, "undelivered") + registered_outcomes(b, "undelivered") == 1, (a.metrics(), b.metrics())
    # And a, whose command waits on its own database, learns the outcome.
    show = subprocess.run([binary(), "cache", "show", TESTED, "--config", str(a.config_path)], capture_output=True, text=True).stdout
    assert ": undelivered (250 " in show, show


def test_a_client_trapped_beside_one_instance_is_refused_by_the_other(fleet, workdir, postgres, start_milter, start_postfix):
    """A trap process on a's database, in the fleet under a name of its own:
    the client it traps is refused by b as well, through PostgreSQL."""
    milters, guarded = fleet
    a, b = milters["a"], milters["b"]
    spammer = "127.0.0.9"
    trap_socket = f"inet:{free_port()}@127.0.0.1"
    trap = start_milter(config_text(socket=trap_socket, sections=(
        f'[probe]\nenabled = false\n[trap]\nenabled = true\n[cache]\npath = "{a.database}"\n' + postgres.config_section("a-trap"))),
        name="a-trap", socket=trap_socket)
    trap_port = free_port()
    snippet = subprocess.run([binary(), "postfix-snippet", "--trap", "--listen", f"127.0.0.1:{trap_port}",
                              "--config", str(trap.config_path)], capture_output=True, text=True, check=True).stdout
    trap_mx = start_postfix(name="trap-mx", master_extra="\n" + snippet)
    code, out = swaks(trap_port, to="victim@victim.example", source=spammer)
    assert code == 0, out
    assert wait_until(lambda: postgres.query(f"SELECT verdict, source FROM relay_milter_verdict WHERE host = '{spammer}'")
                      == "trapped|trap", timeout=20), trap.log()[-2000:]

    def refused_by_b():
        _, out = swaks(guarded["b"].port, to="bob@example.test", source=spammer)
        return f"<** 550 5.7.1 Your host {spammer} tried to relay mail through this site" in out
    assert wait_until(refused_by_b, timeout=20), b.log()[-2000:]
    trap_mx.wait_queue_empty()
