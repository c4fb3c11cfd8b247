"""Many sessions through relay-milter with its memory flat (issue 6, point 2):
milter-load (Benchmarks/MilterLoad) drives the milter protocol directly,
several messages per connection, several recipients per message, the mix of
local mail, relay attempts and trusted clients, from thousands of distinct
client addresses. After a warm-up (threads, allocator arenas, caches), the
milter's RSS must not grow while tens of thousands more sessions go through.
The long run (1 M sessions) is recorded in BENCHMARKS.md."""
import json
import subprocess

from mailharness.relaymilter import build_tool, config_text

LOAD = build_tool("milter-load")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def load(socket, seconds):
    result = subprocess.run([str(LOAD), "--socket", socket, "--duration", str(seconds), "--warmup", "0",
                             "--sessions", "8", "--recipients", "3", "--messages-per-session", "4",
                             "--clients", "20000", "--json"], capture_output=True, text=True, timeout=seconds + 120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_rss_stays_flat_over_many_sessions(start_milter):
    assert LOAD.exists(), f"{LOAD} is missing: build every product of the build under test"
    milter = start_milter(config_text(), unix=True)
    warm = load(milter.socket, 6)
    assert warm["errors"] == [], warm
    before = rss_kb(milter.proc.pid)
    soak = load(milter.socket, 24)
    after = rss_kb(milter.proc.pid)
    print(f"transactions warm-up {warm['transactions']}, soak {soak['transactions']}; RSS {before} -> {after} kB")
    assert soak["errors"] == [], soak
    assert soak["transactions"] >= 5000, soak
    assert after - before < 4096, f"RSS grew from {before} to {after} kB over {soak['transactions']} transactions"
    assert milter.proc.poll() is None
