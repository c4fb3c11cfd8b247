"""5. Metrics recording on vs off: two relay-milters, the same load,
alternating rounds in one run."""
from .processes import relay_milter
from .report import ratio, table, target
from .sidebyside import alternate, rows


def run(build, root, settings):
    milters = {
        "on": relay_milter(build, root / "metrics-on", "unix").start(),
        "off": relay_milter(build, root / "metrics-off", "unix", sections="[metrics]\nenabled = false\n").start(),
    }
    try:
        reports = alternate(build, milters, settings)
    finally:
        for milter in milters.values():
            milter.stop()
    table_rows, rate = rows(reports, "on", "off")
    text = "\n".join([
        "## 5. Metrics on vs off",
        "",
        f"Section 1's load against two relay-milters, one with `[metrics] enabled = false`, unix sockets, "
        f"{settings.rounds} alternating rounds of {settings.seconds:g} s. Medians over rounds; microseconds.",
        "",
        table(["", "on p50", "on p99", "off p50", "off p99", "p50 on/off", "p99 on/off"], table_rows),
        "",
        "Targets:",
        "",
        target(rate["on"] >= 0.95 * rate["off"], f"throughput with metrics at {ratio(rate['on'], rate['off']):.2f}x without (goal >= 0.95x)"),
    ])
    return text
