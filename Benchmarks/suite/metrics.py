"""5. Metrics recording on vs off: two relay-milters, the same load,
alternating rounds in one run."""
from .processes import load, relay_milter, stage
from .report import median, ratio, table, target

# Over the unix socket CONNECT, HELO and DATA get no reply (SMFIP_NR_*): nothing to time.
STAGES = ("open", "mail", "rcpt", "eom", "transaction")


def run(build, root, settings):
    milters = {
        "on": relay_milter(build, root / "metrics-on", "unix").start(),
        "off": relay_milter(build, root / "metrics-off", "unix", sections="[metrics]\nenabled = false\n").start(),
    }
    reports = {name: [] for name in milters}
    try:
        for round_ in range(settings.rounds):
            order = list(milters.items()) if round_ % 2 == 0 else list(reversed(milters.items()))
            for name, milter in order:
                reports[name].append(load(build, milter.socket, settings.seconds, settings.warmup, settings.sessions, seed=round_ + 1))
    finally:
        for milter in milters.values():
            milter.stop()
    rate = {name: median([r["transactionsPerSecond"] for r in reports[name]]) for name in milters}
    rows = [["transactions/s", f"{rate['on']:.0f}", "", f"{rate['off']:.0f}", "", f"{ratio(rate['on'], rate['off']):.2f}", ""]]
    for name in STAGES:
        on = [stage(r, name) for r in reports["on"]]
        off = [stage(r, name) for r in reports["off"]]
        p50_on, p99_on = median([p[0] for p in on]), median([p[1] for p in on])
        p50_off, p99_off = median([p[0] for p in off]), median([p[1] for p in off])
        rows.append([name, f"{p50_on:.0f}", f"{p99_on:.0f}", f"{p50_off:.0f}", f"{p99_off:.0f}",
                     f"{ratio(p50_on, p50_off):.2f}", f"{ratio(p99_on, p99_off):.2f}"])
    text = "\n".join([
        "## 5. Metrics on vs off",
        "",
        f"Section 1's load against two relay-milters, one with `[metrics] enabled = false`, unix sockets, "
        f"{settings.rounds} alternating rounds of {settings.seconds:g} s. Medians over rounds; microseconds.",
        "",
        table(["", "on p50", "on p99", "off p50", "off p99", "p50 on/off", "p99 on/off"], rows),
        "",
        "Targets:",
        "",
        target(rate["on"] >= 0.95 * rate["off"], f"throughput with metrics at {ratio(rate['on'], rate['off']):.2f}x without (goal >= 0.95x)"),
    ])
    return text
