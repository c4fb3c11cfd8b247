"""3. The verdict cache: connect-path lookup p50/p99 beside a plain
Dictionary, load time, and the RSS of a relay-milter daemon started on it."""
import re
import subprocess
import time

from .processes import process_status, relay_milter
from .report import table, target


def run(build, root, settings):
    databases = root / "verdict-databases"
    result = subprocess.run([str(build.verdict_cache_bench), "--sizes", ",".join(map(str, settings.cache_sizes)),
                             "--lookups", str(settings.cache_lookups), "--keep", str(databases)],
                            capture_output=True, text=True, timeout=1800, check=True)
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"^\d+ ", line)]
    daemon = {}
    for size in settings.cache_sizes:
        # The figure an admin sees: a whole daemon, started on a database this big.
        milter = relay_milter(build, root / f"cache-daemon-{size}", "unix",
                              sections=f'[cache]\npath = "{databases / f"v{size}.sqlite"}"\n')
        started = time.monotonic()
        milter.start()
        seconds = time.monotonic() - started
        time.sleep(0.5)
        daemon[size] = (seconds, process_status(milter.proc.pid, "VmRSS") / 1024)
        milter.stop()
    table_rows = []
    for row in rows:
        size = int(row[0])
        seconds, rss = daemon[size]
        table_rows.append([f"{size:,}", row[1], row[2], row[3], row[4], row[5], row[6], f"{seconds:.2f}", f"{rss:.0f}"])
    largest = rows[-1]
    largest_rss = daemon[int(largest[0])][1]
    text = "\n".join([
        "## 3. Verdict cache",
        "",
        f"`verdict-cache-bench`: {settings.cache_lookups:,} lookups per size (half hits, half misses), timed one by one "
        "beside a plain unlocked `Dictionary` of the same keys; then a relay-milter daemon started on each database.",
        "",
        table(["hosts", "index load s", "lookup p50 ns", "lookup p99 ns", "Dictionary p50 ns",
               "Dictionary p99 ns", "p50 vs Dictionary", "daemon start s", "daemon RSS MB"], table_rows),
        "",
        "Targets:",
        "",
        target(float(largest[3]) <= 5000, f"lookup p99 {largest[3]} ns at {int(largest[0]):,} hosts (target <= 5 us)"),
        target(largest_rss <= 150, f"daemon RSS {largest_rss:.0f} MB at {int(largest[0]):,} hosts (target <= 150 MB)"),
    ])
    return text
