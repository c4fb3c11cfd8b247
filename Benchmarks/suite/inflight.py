"""4. Open-relay tests in flight: relay-milter's latency under the protocol
load of section 1, idle and then with many tests running (a share of them
against tarpits that never answer), in one run."""
import os
import resource
import subprocess
import sys
import time

from mailharness.loopback_targets import address
from mailharness.milterclient import MilterClient
from mailharness.ports import free_port

from .processes import REPO, load, process_status, relay_milter, stage, wait_until
from .report import table, target

# Over the unix socket CONNECT, HELO and DATA get no reply (SMFIP_NR_*): nothing to time.
STAGES = ("open", "mail", "rcpt", "eom", "transaction")
CLIENTS = 500  # the load's outside clients, tested once before the idle phase


def finished_tests(milter):
    return milter.log().count("open-relay test finished")


def wait_until_settled(milter, timeout=120):
    """Waits until no test has finished for a second (the warm-up's tests are quick)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = finished_tests(milter)
        if now == last and now > 0:
            return now
        last = now
        time.sleep(1.0)
    return None


def run(build, root, settings):
    tests = settings.tests_in_flight
    # The daemon holds a socket per test in flight, and so do the targets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    port = free_port()
    # The targets stand in for remote hosts, which would not share our CPUs:
    # at the lowest priority they take only what the milter leaves idle.
    targets = subprocess.Popen([sys.executable, "-m", "mailharness.loopback_targets", "--count", str(tests), "--port", str(port),
                                "--tarpit-share", "0.33"], cwd=REPO / "Scripts", stdout=subprocess.PIPE, text=True,
                               preexec_fn=lambda: os.nice(19))
    milter = None
    try:
        if targets.stdout.readline().strip() != "ready":
            raise RuntimeError("loopback targets did not start")
        milter = relay_milter(build, root / "inflight", "unix", sections=(
            f'[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\nport = {port}\n'
            f'max_in_flight = {tests + CLIENTS}\nqueue_size = {2 * (tests + CLIENTS)}\nnetwork_interval = 0\n'
            'command_timeout = 15\ntotal_timeout = 60\n')).start()
        # The load's own clients (127.2.x.y, nothing listens there) are tested and
        # cached first, as most clients of a running MX are: both phases then see cache hits.
        load(build, milter.socket, 1.0, 0, settings.sessions, clients=CLIENTS)
        warm = wait_until_settled(milter)
        # Latency is compared at a steady half of what the milter sustains, as
        # an MX runs, not at saturation, where any extra work just queues.
        capacity = load(build, milter.socket, settings.seconds, settings.warmup, settings.sessions, clients=CLIENTS)
        rate = capacity["transactionsPerSecond"] / 2
        idle = load(build, milter.socket, settings.seconds, settings.warmup, settings.sessions, clients=CLIENTS, rate=rate)
        before = finished_tests(milter)

        # One connection from each target address queues one test each. The
        # connections themselves are MTA load, not tests: they are made before
        # the busy phase, which then measures the tests in flight.
        for i in range(tests):
            client = MilterClient(milter.address)
            client.negotiate()
            client.connect("suspect.bench.example", address(i))
            client.close()
        at_start = tests - (finished_tests(milter) - before)
        busy = load(build, milter.socket, settings.seconds, 0, settings.sessions, clients=CLIENTS, rate=rate)
        threads = process_status(milter.proc.pid, "Threads")
        during = finished_tests(milter) - before
        rss = process_status(milter.proc.pid, "VmRSS") / 1024
        wait_until(lambda: finished_tests(milter) - before >= tests, timeout=120)
        verdicts = {}
        for line in milter.log().splitlines()[::-1]:
            if "open-relay test finished" in line and "client.address=127.1." in line:
                verdict = line.split("probe.verdict=")[1].split()[0]
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
    finally:
        if milter:
            milter.stop()
        targets.kill()
        targets.wait()
    rows = []
    for name in STAGES:
        i, b = stage(idle, name), stage(busy, name)
        rows.append([name, f"{i[0]:.0f}", f"{i[1]:.0f}", f"{b[0]:.0f}", f"{b[1]:.0f}", f"{b[0] / i[0]:.2f}", f"{b[1] / i[1]:.2f}"])
    rows.append(["transactions/s", f"{idle['transactionsPerSecond']:.0f}", "", f"{busy['transactionsPerSecond']:.0f}", "",
                 f"{busy['transactionsPerSecond'] / idle['transactionsPerSecond']:.2f}", ""])
    saturated = capacity["transactionsPerSecond"]
    p99_ratio = stage(busy, "transaction")[1] / stage(idle, "transaction")[1]
    text = "\n".join([
        "## 4. Open-relay tests in flight",
        "",
        f"relay-milter under section 1's mix, paced at half of what it sustained here ({saturated:.0f} transactions/s "
        f"with {settings.sessions} sessions, so {rate:.0f}/s; clients already tested{'' if warm else ' (warm-up incomplete)'}), "
        f"{settings.seconds:g} s idle, then {settings.seconds:g} s right after {tests} tests were queued against loopback "
        f"targets, a third of them tarpits that hold their test open for the 15 s command timeout "
        f"({at_start} tests still in flight or queued when the busy phase began). Microseconds.",
        "",
        table(["stage", "idle p50", "idle p99", "busy p50", "busy p99", "p50 ratio", "p99 ratio"], rows),
        "",
        f"Daemon right after the busy phase: {threads} threads, {rss:.0f} MB RSS; tests finished during the busy phase: "
        f"{during} of {tests}; verdicts: " + ", ".join(f"{k}={v}" for k, v in sorted(verdicts.items())) + ".",
        "",
        "Targets:",
        "",
        target(p99_ratio <= 1.1, f"transaction p99 with tests in flight at {p99_ratio:.2f}x idle (target <= 1.1x)"),
    ])
    return text
