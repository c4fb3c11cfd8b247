"""Section 1's load against two relay-milters that differ in one setting,
in alternating rounds of one run, and the table that compares them."""
from .processes import load, stage
from .report import median, ratio

# Over the unix socket CONNECT, HELO and DATA get no reply (SMFIP_NR_*): nothing to time.
STAGES = ("open", "mail", "rcpt", "eom", "transaction")


def alternate(build, milters, settings):
    """{name: [milter-load report per round]}, the order swapped every round."""
    reports = {name: [] for name in milters}
    for round_ in range(settings.rounds):
        order = list(milters.items()) if round_ % 2 == 0 else list(reversed(milters.items()))
        for name, milter in order:
            reports[name].append(load(build, milter.socket, settings.seconds, settings.warmup, settings.sessions, seed=round_ + 1))
    return reports


def rows(reports, first, second):
    """Median transactions/s, then per stage p50 and p99 of `first` and `second` with their ratios."""
    rate = {name: median([r["transactionsPerSecond"] for r in reports[name]]) for name in (first, second)}
    table_rows = [["transactions/s", f"{rate[first]:.0f}", "", f"{rate[second]:.0f}", "", f"{ratio(rate[first], rate[second]):.2f}", ""]]
    for name in STAGES:
        a = [stage(r, name) for r in reports[first]]
        b = [stage(r, name) for r in reports[second]]
        a50, a99 = median([p[0] for p in a]), median([p[1] for p in a])
        b50, b99 = median([p[0] for p in b]), median([p[1] for p in b])
        table_rows.append([name, f"{a50:.0f}", f"{a99:.0f}", f"{b50:.0f}", f"{b99:.0f}", f"{ratio(a50, b50):.2f}", f"{ratio(a99, b99):.2f}"])
    return table_rows, rate
