"""See Benchmarks/callback-latency."""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Scripts"))
from mailharness.milterclient import MilterClient  # noqa: E402
from mailharness.ports import free_port, wait_until  # noqa: E402
from mailharness.relaymilter import RelayMilter, config_text  # noqa: E402
from mailharness.loopback_targets import address  # noqa: E402


def sample(milter, samples):
    """Times connect, MAIL and RCPT round trips of a trusted client (no test
    queued), one milter connection per sample, as an MTA opens one per SMTP session."""
    times = {"connect": [], "mail": [], "rcpt": []}
    for i in range(samples):
        client = MilterClient(milter.address)
        client.negotiate()
        t0 = time.perf_counter_ns()
        client.connect("bench", "127.0.0.1")
        t1 = time.perf_counter_ns()
        client.mail("<a@bench.example>")
        t2 = time.perf_counter_ns()
        client.rcpt(f"<user{i}@example.test>")
        t3 = time.perf_counter_ns()
        client.quit()
        client.close()
        times["connect"].append((t1 - t0) / 1000)
        times["mail"].append((t2 - t1) / 1000)
        times["rcpt"].append((t3 - t2) / 1000)
    return times


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "relay-milter"))
    args = parser.parse_args()
    os.environ["RELAY_MILTER_BIN"] = args.binary
    # The daemon holds a socket per test in flight: give it (and us) room.
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, max(8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))

    root = Path(tempfile.mkdtemp(prefix="relay-milter-bench-"))
    port = free_port()
    targets = subprocess.Popen([sys.executable, "-m", "mailharness.loopback_targets", "--count", str(args.tests),
                                "--port", str(port)], cwd=REPO / "Scripts", stdout=subprocess.PIPE, text=True)
    assert targets.stdout.readline().strip() == "ready"
    milter = RelayMilter(root, config_text(sections=(
        f'[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\nport = {port}\n'
        f'max_in_flight = {args.tests}\nqueue_size = {2 * args.tests}\nnetwork_interval = 0\n'
        'command_timeout = 15\ntotal_timeout = 60\n'))).start()
    try:
        idle = sample(milter, args.samples)
        # One milter connection from each target address queues one test each.
        for i in range(args.tests):
            c = MilterClient(milter.address)
            c.negotiate()
            c.connect("suspect", address(i))
            c.close()
        time.sleep(1)
        threads = [l for l in open(f"/proc/{milter.proc.pid}/status") if l.startswith("Threads:")][0].split()[1]
        started = len([l for l in milter.log().splitlines() if "open-relay test finished" in l])
        busy = sample(milter, args.samples)
        finished_during = len([l for l in milter.log().splitlines() if "open-relay test finished" in l])
        idle_again = sample(milter, args.samples) if wait_until(
            lambda: milter.log().count("open-relay test finished") >= args.tests, timeout=90) else None
        print(f"relay-milter callback latency, {args.samples} samples per phase, microseconds "
              f"(round trip through the Python client; compare phases, not absolutes)")
        print(f"tests: {args.tests} queued, a third against tarpits; daemon threads while in flight: {threads}; "
              f"finished before the busy phase: {started}, by its end: {finished_during}")
        print("stage    idle_p50  idle_p99  busy_p50  busy_p99  p50_ratio  p99_ratio" +
              ("  after_p50  after_p99" if idle_again else ""))
        for stage in ("connect", "mail", "rcpt"):
            row = (f"{stage:8} {pct(idle[stage], .5):9.0f} {pct(idle[stage], .99):9.0f} "
                   f"{pct(busy[stage], .5):9.0f} {pct(busy[stage], .99):9.0f} "
                   f"{pct(busy[stage], .5) / pct(idle[stage], .5):10.2f} {pct(busy[stage], .99) / pct(idle[stage], .99):10.2f}")
            if idle_again:
                row += f" {pct(idle_again[stage], .5):10.0f} {pct(idle_again[stage], .99):10.0f}"
            print(row)
        verdicts = {}
        for line in milter.log().splitlines():
            if "open-relay test finished" in line:
                v = line.split("probe.verdict=")[1].split()[0]
                verdicts[v] = verdicts.get(v, 0) + 1
        print("verdicts:", " ".join(f"{k}={v}" for k, v in sorted(verdicts.items())))
    finally:
        milter.stop()
        targets.kill()


if __name__ == "__main__":
    main()
