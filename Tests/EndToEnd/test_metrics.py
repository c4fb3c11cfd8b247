"""/metrics after a scripted mix of traffic through the real Postfix: the
exact counts, fixed label sets only, and an exposition promtool accepts."""
import os
import shutil
import subprocess
import urllib.request

import pytest

from mailharness.ports import wait_until
from mailharness.relaymilter import config_text
from mailharness.swaks import swaks


def delta(after, before, name, **labels):
    key = (name, frozenset(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


def test_counts_match_the_traffic_exactly(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    # Postfix itself trusts 127.0.0.1 and 127.0.0.2 only: relaying from 127.0.0.3 it refuses on its own.
    postfix = start_postfix(milter=milter.postfix_spec, mynetworks="127.0.0.1/32 127.0.0.2/32")
    # Postfix's start-up check (one bare connection) reaches the milter too; let it settle first.
    total, active = ("relay_milter_connections_total", frozenset()), ("relay_milter_connections_active", frozenset())
    before = wait_until(lambda: (m := milter.metrics()).get(total, 0) >= 1 and m.get(active) == 0 and m)
    assert before
    for i in range(3):
        assert swaks(postfix.port, to=f"local{i}@example.test", source="127.0.0.2")[0] == 0
    for i in range(2):
        assert "<** 550 5.7.1" in swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")[1]
    for i in range(2):
        assert "Relay access denied" in swaks(postfix.port, to=f"other{i}@elsewhere.example", source="127.0.0.3")[1]
    assert swaks(postfix.port, to="friend@elsewhere.example", source="127.0.0.1")[0] == 0
    assert wait_until(lambda: milter.metrics().get(("relay_milter_connections_active", frozenset()), 1) == 0)
    after = milter.metrics()

    rcpt = "relay_milter_decisions_total"
    assert delta(after, before, rcpt, stage="rcpt", action="accept", reason="relay.local_recipient") == 3
    assert delta(after, before, rcpt, stage="rcpt", action="reject", reason="relay.denied") == 2
    assert delta(after, before, rcpt, stage="rcpt", action="accept", reason="relay.mta_rejected") == 2
    assert delta(after, before, rcpt, stage="rcpt", action="accept", reason="relay.trusted_network") == 1
    assert delta(after, before, "relay_milter_mta_rejected_recipients_total") == 2
    assert delta(after, before, "relay_milter_connections_total") == 8
    assert sum(v for (name, labels), v in after.items() if name == "relay_milter_callback_duration_seconds_count"
               and ("stage", "rcpt") in labels) >= 8
    assert after[("relay_milter_build_info", frozenset({("version", "0.1.0")}))] == 1
    # Fixed label sets: no address or domain ever becomes a label value.
    for (name, labels) in after:
        for key, value in labels:
            assert key in {"stage", "action", "reason", "verdict", "result", "cause", "version", "le"}, (name, key)
            assert "@" not in value and "127.0.0" not in value, (name, value)


def test_only_metrics_is_served(start_milter):
    milter = start_milter(config_text())
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{milter.metrics_port}/", timeout=5)
    assert error.value.code == 404
    body = urllib.request.urlopen(f"http://127.0.0.1:{milter.metrics_port}/metrics", timeout=5).read().decode()
    assert "# HELP relay_milter_decisions_total" in body or "# HELP relay_milter_connections_total" in body


def test_reloads_are_counted(start_milter):
    import signal
    milter = start_milter(config_text())
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: milter.metrics().get(("relay_milter_config_reloads_total", frozenset({("result", "ok")}))) == 1)
    milter.write_config("[policy]\nmode = \"nope\"\n")
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: milter.metrics().get(("relay_milter_config_reloads_total", frozenset({("result", "error")}))) == 1)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed")
def test_promtool_accepts_the_exposition(start_milter, start_postfix, sink):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    swaks(postfix.port, to="victim@elsewhere.example", source="127.0.0.2")
    body = urllib.request.urlopen(f"http://127.0.0.1:{milter.metrics_port}/metrics", timeout=5).read()
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_disabled_metrics_serve_nothing(start_milter):
    milter = start_milter(config_text() + "\n[metrics]\nenabled = false\n")
    import socket
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", milter.metrics_port), timeout=2).close()
    assert "metrics listening" not in milter.log()


def test_stats_command_asks_the_running_daemon(start_milter, start_postfix, sink):
    import json as jsonlib
    from mailharness.relaymilter import binary
    milter = start_milter(config_text() + "\n[metrics]\nstats_detail = true\n")
    postfix = start_postfix(milter=milter.postfix_spec)
    for i in range(4):
        swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")
    swaks(postfix.port, to="x@other.example", source="127.0.0.2")
    swaks(postfix.port, to="bob@example.test", source="127.0.0.2")
    result = subprocess.run([binary(), "stats", "--config", str(milter.config_path), "--since", "1h", "--json"],
                            capture_output=True, text=True, timeout=30)
    # The daemon's log too: a reset from it was once seen here, cause not found.
    assert result.returncode == 0, result.stderr + milter.log()[-3000:]
    report = jsonlib.loads(result.stdout)
    counts = {(c["action"], c["reason"]): c["count"] for c in report["window"]}
    assert counts[("reject", "relay.denied")] == 5
    assert counts[("accept", "relay.local_recipient")] == 1
    assert report["topClients"][0] == {"key": "127.0.0.2", "count": 5, "overcount": 0}
    assert report["topNetworks"][0]["key"] == "127.0.0.0/24"
    assert [d["key"] for d in report["topDomains"]] == ["elsewhere.example", "other.example"]
    assert report["refusedPerHour"] == [5]
    text = subprocess.run([binary(), "stats", "--config", str(milter.config_path)], capture_output=True, text=True).stdout
    assert "reject   relay.denied" in text and "refused per hour (oldest first, max 5): █" in text
    assert "127.0.0.2" in text and "elsewhere.example" in text
    assert text.rstrip().endswith("verdict cache: 0 host(s)")
    assert report["cacheByVerdict"] == {}


def test_stats_without_a_daemon_says_so(workdir):
    from mailharness.relaymilter import binary
    from mailharness.ports import free_port
    config = workdir / "c.toml"
    config.write_text(config_text() + f'\n[metrics]\nlisten = "127.0.0.1:{free_port()}"\n')
    result = subprocess.run([binary(), "stats", "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 69
    assert "cannot reach relay-milter at http://127.0.0.1:" in result.stderr and "is it running?" in result.stderr
    # In an admin's words, not NIO's type names.
    assert "(connection refused)" in result.stderr and "Failure" not in result.stderr, result.stderr


def test_stats_history_survives_a_restart(start_milter, start_postfix, sink):
    import json as jsonlib
    from mailharness.relaymilter import binary
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    for i in range(3):
        swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")
    assert milter.stop() == 0
    milter.start()
    assert 'msg="statistics history loaded"' in milter.log()

    def counts(since):
        out = subprocess.run([binary(), "stats", "--config", str(milter.config_path), "--since", since, "--json"],
                             capture_output=True, text=True, timeout=30).stdout
        return {(c["action"], c["reason"]): c["count"] for c in jsonlib.loads(out)["window"]}

    assert counts("1h")[("reject", "relay.denied")] == 3
    assert counts("7d")[("reject", "relay.denied")] == 3


def test_an_unclean_stop_loses_at_most_the_last_write_interval(start_milter, start_postfix, sink):
    """kill -9: every count older than the write interval (10 s) is already in the database."""
    import json as jsonlib
    import signal
    import sqlite3
    from mailharness.relaymilter import binary
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    for i in range(2):
        swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")

    def written():
        with sqlite3.connect(milter.database) as db:
            return db.execute("SELECT COALESCE(SUM(count), 0) FROM stats_rollup WHERE granularity = 'minute' "
                              "AND reason = 'relay.denied'").fetchone()[0]

    # Within one interval, not when their minute ends (up to 60 s away).
    assert wait_until(lambda: written() == 2, timeout=15)
    swaks(postfix.port, to="late@elsewhere.example", source="127.0.0.2")  # after that write
    milter.stop(signal.SIGKILL)
    milter.start()
    out = subprocess.run([binary(), "stats", "--config", str(milter.config_path), "--json"], capture_output=True, text=True).stdout
    counts = {(c["action"], c["reason"]): c["count"] for c in jsonlib.loads(out)["window"]}
    assert counts[("reject", "relay.denied")] in (2, 3)  # 3 only if a write came between the late one and the kill


def test_stats_names_no_client_unless_told(start_milter, start_postfix, sink):
    """Any local user can reach the listener: by default neither /stats nor
    /metrics names a client or a domain."""
    from mailharness.relaymilter import binary
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    assert "<** 550 5.7.1" in swaks(postfix.port, to="victim@elsewhere.example", source="127.0.0.2")[1]
    base = f"http://127.0.0.1:{milter.metrics_port}"
    served = urllib.request.urlopen(f"{base}/stats?since=3600", timeout=10).read().decode()
    served += urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    assert "127.0.0.2" not in served and "elsewhere.example" not in served, served
    text = subprocess.run([binary(), "stats", "--config", str(milter.config_path)], capture_output=True, text=True).stdout
    assert "reject   relay.denied" in text
    assert "top refused clients, networks and destinations: not served ([metrics] stats_detail = false)" in text, text
    assert "127.0.0.2" not in text


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_and_slow_clients_of_the_listener_cannot_starve_the_milter(workdir, start_postfix, sink):
    """2,000 idle connections and a slowloris client at the metrics listener
    of a daemon with a service's usual 1024 descriptors: mail keeps flowing,
    the daemon's descriptors stay few, the slow client is cut off, and
    /metrics answers again once the idle ones are gone."""
    import resource
    import socket
    import time
    from mailharness.relaymilter import RelayMilter
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))  # this side holds 2,000 sockets
    milter = RelayMilter(workdir / "milter", config_text(), open_files=1024).start()
    idle = []
    try:
        postfix = start_postfix(milter=milter.postfix_spec)
        at_rest = open_descriptors(milter.proc.pid)
        slow = socket.create_connection(("127.0.0.1", milter.metrics_port))
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        opened = time.monotonic()
        few = lambda: open_descriptors(milter.proc.pid) <= at_rest + 70
        for batch in range(20):
            for _ in range(100):
                try:
                    idle.append(socket.create_connection(("127.0.0.1", milter.metrics_port), timeout=2))
                except OSError:
                    pass  # the listener's backlog may refuse some: as well
            assert wait_until(few, timeout=5), f"{open_descriptors(milter.proc.pid)} descriptors after {len(idle)} connections"
        for i in range(5):
            assert swaks(postfix.port, to=f"bob{i}@example.test", source="127.0.0.2")[0] == 0
            assert "<** 550 5.7.1" in swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")[1]
        # The slowloris client, a header line every second, is cut off at the request deadline.
        slow.settimeout(1)
        cut = None
        while cut is None and time.monotonic() - opened < 30:
            try:
                slow.sendall(b"X-Slow: 1\r\n")
                if slow.recv(1) == b"":
                    cut = time.monotonic() - opened
            except socket.timeout:
                pass
            except OSError:
                cut = time.monotonic() - opened
        assert cut is not None and cut < 15, cut
    finally:
        for s in idle:
            s.close()
    def scrapes():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{milter.metrics_port}/metrics", timeout=5).status == 200
        except OSError:
            return False
    assert wait_until(scrapes, timeout=15)
    # An oversized request head is refused, not buffered.
    big = socket.create_connection(("127.0.0.1", milter.metrics_port))
    big.settimeout(10)
    answer = b""
    try:
        big.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        while chunk := big.recv(4096):
            answer += chunk
    except OSError:
        pass
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert milter.stop() == 0
