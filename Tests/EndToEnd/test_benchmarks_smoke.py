"""The benchmark harnesses still run and print their figures (tiny counts,
debug build). Speed is never asserted here."""
import re
import subprocess

from mailharness.fakesmtp import FakeServer, closed_server, tarpit
from mailharness.relaymilter import REPO

DEBUG = REPO / ".build" / "debug"


def test_verdict_cache_bench_prints_its_table():
    result = subprocess.run([str(DEBUG / "verdict-cache-bench"), "--sizes", "1000,5000", "--lookups", "2000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [l for l in result.stdout.splitlines() if re.match(r"^\d+ ", l)]
    assert [r.split()[0] for r in rows] == ["1000", "5000"], result.stdout
    assert all(len(r.split()) == 8 for r in rows)


def test_probe_flight_bench_runs_on_loopback_targets():
    closed, pit = FakeServer(closed_server).start(), FakeServer(tarpit).start()
    try:
        result = subprocess.run([str(DEBUG / "probe-flight-bench"), "--closed", f"127.0.0.1:{closed.port}",
                                 "--tarpit", f"127.0.0.1:{pit.port}", "--count", "30", "--command-timeout", "2"],
                                capture_output=True, text=True, timeout=120)
    finally:
        closed.stop()
        pit.stop()
    assert result.returncode == 0, result.stderr
    assert "verdicts: closed=21 unreachable=9" in result.stdout, result.stdout


def test_callback_latency_bench_runs():
    result = subprocess.run([str(REPO / "Benchmarks" / "callback-latency"), "--binary", str(DEBUG / "relay-milter"),
                             "--tests", "30", "--samples", "50"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^rcpt\s+\d+\s+\d+\s+\d+\s+\d+", result.stdout, re.M), result.stdout
    assert "verdicts: closed=21 unreachable=9" in result.stdout, result.stdout


def test_metrics_overhead_bench_runs():
    result = subprocess.run([str(REPO / "Benchmarks" / "metrics-overhead"), "--binary", str(DEBUG / "relay-milter"),
                             "--rounds", "1", "--samples", "20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^rcpt\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+$", result.stdout, re.M), result.stdout


def test_postfix_throughput_bench_runs():
    result = subprocess.run([str(REPO / "Benchmarks" / "postfix-throughput"), "--binary", str(DEBUG / "relay-milter"),
                             "--rounds", "1", "--messages", "20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^metrics off\s+\d+\s+median\s+\d+\s+vs no milter\s+[\d.]+$", result.stdout, re.M), result.stdout
    assert "metrics on / off (medians):" in result.stdout
