"""6. A fleet on PostgreSQL: how long a verdict takes to reach another
instance's memory, and section 1's load against an instance on the shared
store beside one on the embedded database (the connect path reads memory
either way)."""
import time
import urllib.request

from .processes import relay_milter  # importing .processes puts Scripts/ on the path (mailharness below)
from .report import table
from .sidebyside import alternate, rows

import psycopg  # noqa: E402
from mailharness.ports import wait_until  # noqa: E402
from mailharness.postgres import DATABASE, PASSWORD, USER, PostgresServer  # noqa: E402

def received(metrics_port):
    """The instance's count of verdicts taken from the shared database."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith('relay_milter_shared_store_verdicts_total{direction="received"}'):
            return float(line.split()[-1])
    return 0.0


def wait_connected(milter):
    """Until the instance has connected and made the schema: it starts serving before that."""
    if not wait_until(lambda: milter.metrics().get(("relay_milter_shared_store_up", frozenset())) == 1, timeout=30):
        raise RuntimeError(f"the instance did not reach PostgreSQL in 30 s:\n{milter.log()[-2000:]}")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run(build, root, settings):
    postgres = PostgresServer(root / "fleet-pg").start()
    milters, writer = {}, None
    try:
        for name in ("embedded", "shared"):
            shared = postgres.config_section(name, poll_interval="5s") if name == "shared" else ""
            milters[name] = relay_milter(build, root / f"fleet-{name}", "unix", sections=(
                f'[cache]\npath = "{root}/fleet-{name}.sqlite"\n{shared}')).start()
        shared = milters["shared"]
        wait_connected(shared)
        # Propagation: a verdict committed by another instance ("bench"), until
        # this one holds it in memory (a notification, then a read of the changes).
        delays = []
        count = max(5, settings.rounds * 20)
        writer = psycopg.connect(host="127.0.0.1", port=postgres.port, user=USER, password=PASSWORD, dbname=DATABASE,
                                 autocommit=True)
        for i in range(count):
            host = f"198.51.{100 + i // 250}.{i % 250 + 1}"
            writer.execute(
                "INSERT INTO relay_milter_verdict (host, verdict, tested_at, expires_at, accepted_tests, tests_run,"
                " banner, detail, source, instance) VALUES (%s, 'open', now(), now() + interval '1 day',"
                " '{}', 20, '', 'bench', 'probe', 'bench')", (host,))
            committed = time.monotonic()  # the commit is acknowledged
            while received(shared.metrics_port) < i + 1:
                if time.monotonic() - committed > 30:
                    raise RuntimeError(f"verdict {host} did not reach the instance in 30 s:\n{shared.log()[-2000:]}")
                time.sleep(0.001)
            delays.append((time.monotonic() - committed) * 1000)

        # The connect path: section 1's load, alternating rounds.
        reports = alternate(build, milters, settings)
    finally:
        if writer is not None:
            writer.close()
        for milter in milters.values():
            milter.stop()
        postgres.stop()

    table_rows, _ = rows(reports, "shared", "embedded")
    return "\n".join([
        "## 6. Fleet on PostgreSQL",
        "",
        f"A private PostgreSQL server on loopback. Propagation: {count} verdicts committed one at a time by another "
        "writer (autocommit, one open connection), each timed from the acknowledged commit until this instance "
        "counts it as received (its `/metrics`, polled every millisecond), so each figure includes up to one scrape.",
        "",
        table(["verdicts", "p50 ms", "p99 ms", "max ms"],
              [[count, f"{percentile(delays, 0.5):.1f}", f"{percentile(delays, 0.99):.1f}", f"{max(delays):.1f}"]]),
        "",
        f"Section 1's load against an instance on the shared store and one on the embedded database, unix sockets, "
        f"{settings.rounds} alternating rounds of {settings.seconds:g} s. Medians over rounds; microseconds.",
        "",
        table(["", "shared p50", "shared p99", "embedded p50", "embedded p99", "p50 shared/embedded", "p99 shared/embedded"], table_rows),
    ])
