"""4. Open-relay tests in flight: relay-milter's latency under the protocol
load of section 1, idle and then with many tests running (a share of them
against tarpits that never answer), in paired rounds of one run: each round
an idle phase, then a busy phase right after a fresh set of tests was queued,
then a wait until those tests have finished. The same rounds measure the
no-op C milter under that load while relay-milter runs as many tests beside
it: the cost of the tests' work on shared cores to a milter that does none."""
import os
import resource
import subprocess
import time

from mailharness.loopback_targets import address
from mailharness.milterclient import MilterClient
from mailharness.ports import free_port

from .processes import NoopMilter, load, process_status, relay_milter, stage, threads_cpu_seconds, wait_until
from .report import median, ratio, table, target
from .sidebyside import rows

CLIENTS = 500  # the load's outside clients, tested once before the first idle phase
# SwiftNIO names its event-loop threads so; relay-milter's one runs the tests.
PROBE_LOOP = "NIO-ELT"
# Which milter serves the load in a phase; relay-milter runs the tests in both.
RELAY_MILTER, NOOP = "relay-milter", "no-op C milter"
SERVED = (RELAY_MILTER, NOOP)


class FinishedTests:
    """Counts relay-milter's "test finished" log lines, reading only what was
    appended since the last call. The log gets a line per transaction too
    (about 250,000 by the last round of a full run here, going by its rates):
    read whole at every poll, it took a fifth of the machine's CPU samples in
    a profile of this section (between phases), and one such read sat between
    queueing a round's tests and starting its busy phase."""

    LINE = b"open-relay test finished"

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.count = 0

    def __call__(self):
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            appended = log.read()
        # A line still being written is counted once it is whole.
        whole = appended.rfind(b"\n") + 1
        self.count += appended.count(self.LINE, 0, whole)
        self.offset += whole
        return self.count


def wait_until_settled(finished_tests, timeout=120):
    """Waits until no test has finished for a second (the warm-up's tests are quick)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = finished_tests()
        if now == last and now > 0:
            return now
        last = now
        time.sleep(1.0)
    return None


def queue_tests(milter, first, count):
    """One connection from each of `count` target addresses from `first` on
    queues one test each. The connections themselves are MTA load, not tests:
    they are made before a busy phase, which then measures the tests in flight."""
    for i in range(first, first + count):
        client = MilterClient(milter.address)
        client.negotiate()
        client.connect("suspect.bench.example", address(i))
        client.close()


def run(build, root, settings):
    tests = settings.tests_in_flight
    # Each round tests hosts not yet cached, so each phase has its own targets.
    targets_needed = tests * settings.rounds * len(SERVED)
    # The daemon holds a socket per test in flight, and so do the targets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    port = free_port()
    # The targets stand in for remote hosts, which would not share our CPUs:
    # written in C, and at the lowest priority, they take little of what the
    # milter leaves idle.
    targets = subprocess.Popen([str(build.loopback_targets), "--count", str(targets_needed),
                                "--port", str(port), "--tarpit-share", "0.33"], stdout=subprocess.PIPE,
                               text=True, preexec_fn=lambda: os.nice(19))
    milter = noop = None
    reports = {(served, phase): [] for served in SERVED for phase in ("busy", "idle")}
    finished_during = {served: [] for served in SERVED}
    in_flight_at_start, threads, rss = [], [], []
    # CPU of the thread that runs the tests, from each busy phase's queueing
    # until its tests have finished: what a test costs, steadier than a p99.
    probe_loop_cpu = 0.0
    try:
        if targets.stdout.readline().strip() != "ready":
            raise RuntimeError("loopback targets did not start")
        milter = relay_milter(build, root / "inflight", "unix", sections=(
            f'[probe]\ntest_domain = "relay-test.example"\nallow_loopback = true\nport = {port}\n'
            f'max_in_flight = {tests + CLIENTS}\nqueue_size = {2 * (tests + CLIENTS)}\nnetwork_interval = 0\n'
            'command_timeout = 15\ntotal_timeout = 60\n')).start()
        noop = NoopMilter(build, root / "inflight-noop", "unix").start()
        finished_tests = FinishedTests(milter.log_path)
        sockets = {RELAY_MILTER: milter.socket, NOOP: noop.socket}
        # The load's own clients (127.2.x.y, nothing listens there) are tested and
        # cached first, as most clients of a running MX are: both phases then see cache hits.
        load(build, milter.socket, 1.0, 0, settings.sessions, clients=CLIENTS)
        warm = wait_until_settled(finished_tests)
        # Latency is compared at a steady half of what the milter sustains, as
        # an MX runs, not at saturation, where any extra work just queues.
        capacity = load(build, milter.socket, settings.seconds, settings.warmup, settings.sessions, clients=CLIENTS)
        rate = capacity["transactionsPerSecond"] / 2
        phases = 0
        for round_ in range(settings.rounds):
            for served in SERVED if round_ % 2 == 0 else reversed(SERVED):
                # relay-milter runs the tests either way; the load goes to `served`.
                socket = sockets[served]
                reports[served, "idle"].append(load(build, socket, settings.seconds, settings.warmup, settings.sessions,
                                                    clients=CLIENTS, rate=rate, seed=round_ + 1))
                before = finished_tests()
                loop_cpu_before = threads_cpu_seconds(milter.proc.pid, PROBE_LOOP)
                queue_tests(milter, phases * tests, tests)
                phases += 1
                in_flight_at_start.append(tests - (finished_tests() - before))
                reports[served, "busy"].append(load(build, socket, settings.seconds, 0, settings.sessions, clients=CLIENTS,
                                                    rate=rate, seed=round_ + 1))
                threads.append(process_status(milter.proc.pid, "Threads"))
                rss.append(process_status(milter.proc.pid, "VmRSS") / 1024)
                finished_during[served].append(finished_tests() - before)
                if not wait_until(lambda: finished_tests() - before >= tests, timeout=120):
                    raise RuntimeError(f"round {round_ + 1} ({served}): "
                                       f"{tests - (finished_tests() - before)} tests did not finish")
                probe_loop_cpu += threads_cpu_seconds(milter.proc.pid, PROBE_LOOP) - loop_cpu_before
        verdicts = {}
        for line in milter.log().splitlines():
            if "open-relay test finished" in line and "client.address=127.1." in line:
                verdict = line.split("probe.verdict=")[1].split()[0]
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
    finally:
        for process in (milter, noop):
            if process:
                process.stop()
        targets.kill()
        targets.wait()

    def transaction_p99(served, phase):
        return median([stage(r, "transaction")[1] for r in reports[served, phase]])

    def per_round(served):
        return "; ".join(f"{stage(i, 'transaction')[1]:.0f} / {stage(b, 'transaction')[1]:.0f} us, {done} finished"
                         for i, b, done in zip(reports[served, "idle"], reports[served, "busy"], finished_during[served]))

    table_rows, _ = rows({phase: reports[RELAY_MILTER, phase] for phase in ("busy", "idle")}, "busy", "idle")
    noop_rows, _ = rows({phase: reports[NOOP, phase] for phase in ("busy", "idle")}, "busy", "idle")
    p99_ratio = ratio(transaction_p99(RELAY_MILTER, "busy"), transaction_p99(RELAY_MILTER, "idle"))
    noop_ratio = ratio(transaction_p99(NOOP, "busy"), transaction_p99(NOOP, "idle"))
    against_noop = ratio(p99_ratio, noop_ratio)
    text = "\n".join([
        "## 4. Open-relay tests in flight",
        "",
        f"relay-milter under section 1's mix, paced at half of what it sustained here "
        f"({capacity['transactionsPerSecond']:.0f} transactions/s with {settings.sessions} sessions, so {rate:.0f}/s; "
        f"clients already tested{'' if warm else ' (warm-up incomplete)'}). {settings.rounds} paired rounds: "
        f"{settings.seconds:g} s idle, then {settings.seconds:g} s right after {tests} new tests were queued against "
        f"loopback targets, a third of them tarpits that hold their test open for the 15 s command timeout "
        f"(at least {min(in_flight_at_start)} still in flight or queued when a busy phase began), then a wait until they "
        f"had all finished. In the same rounds (which of the two goes first alternates), the no-op C milter under "
        f"the same paced load, idle and then while relay-milter (serving no load) ran as many tests against other "
        f"targets: what the tests' work on these two shared cores does to a milter that does none of it. "
        f"Medians over rounds; microseconds.",
        "",
        "relay-milter, serving the load and running the tests:",
        "",
        table(["", "busy p50", "busy p99", "idle p50", "idle p99", "p50 busy/idle", "p99 busy/idle"], table_rows),
        "",
        "The no-op C milter, serving the load while relay-milter runs the tests:",
        "",
        table(["", "busy p50", "busy p99", "idle p50", "idle p99", "p50 busy/idle", "p99 busy/idle"], noop_rows),
        "",
        f"Per round, transaction p99 idle / busy and the tests that finished during the busy phase: "
        f"relay-milter {per_round(RELAY_MILTER)}; the no-op {per_round(NOOP)}. "
        f"relay-milter right after each busy phase: {max(threads)} threads at most, {max(rss):.0f} MB RSS at most; "
        f"verdicts of all {targets_needed} tests: " + ", ".join(f"{k}={v}" for k, v in sorted(verdicts.items())) + ".",
        "",
        f"relay-milter's probe event loop used {1000 * probe_loop_cpu / phases / tests:.2f} ms of CPU per test "
        f"({probe_loop_cpu:.1f} s for the {phases * tests} tests of the busy phases, from their queueing until the last "
        f"had finished; a third of them against tarpits, which cost little).",
        "",
        "Targets:",
        "",
        # Met only if it holds against the no-op's phases too: on a machine
        # whose idle phases are the slow ones, busy/idle alone reads "met"
        # whatever the tests cost.
        target(p99_ratio <= 1.1 and against_noop <= 1.1,
               f"transaction p99 with tests in flight at {p99_ratio:.2f}x idle, and at {against_noop:.2f}x the "
               f"no-op C milter's busy/idle ({noop_ratio:.2f}x) beside the same tests (target <= 1.1x, both)"),
    ])
    return text
