"""1. Milter-protocol load with no MTA: relay-milter against the no-op C
milter, unix and inet sockets, alternating rounds in one run."""
import subprocess

from .processes import NoopMilter, cpu_seconds, load, relay_milter, stage
from .report import median, ratio, table, target

STAGES = ("open", "connect", "helo", "mail", "rcpt", "data", "eom", "transaction")
# The same relay-milter logging only what it refuses (`log_level = "notice"`):
# what the per-decision log line of accepted mail costs, beside the default.
QUIET_LOG = "relay-milter, log_level notice"
# With --baseline-binary: another build of relay-milter in the same rounds.
BASELINE = "relay-milter, baseline build"


def log_line_figure(build, settings):
    """What `log-line-bench` prints: ns per decision line through the log handler."""
    result = subprocess.run([str(build.log_line_bench), str(settings.log_lines)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=300)
    if result.returncode != 0 or not result.stdout.startswith("log line: "):
        raise RuntimeError(f"log-line-bench failed: {result.stdout}")
    return result.stdout.strip()[len("log line: "):]


def run(build, root, settings):
    rows, stage_rows, outcome_lines, notes = [], [], [], []
    ratios, cpu_medians = {}, {}
    for transport in ("unix", "inet"):
        milters = {}  # filled inside the try, so that one failing to start stops the others
        try:
            milters["no-op C milter"] = NoopMilter(build, root / f"noop-{transport}", transport).start()
            milters["relay-milter"] = relay_milter(build, root / f"relay-{transport}", transport).start()
            milters[QUIET_LOG] = relay_milter(build, root / f"relay-notice-{transport}", transport,
                                              sections='[service]\nlog_level = "notice"\n').start()
            if settings.baseline_binary:
                milters[BASELINE] = relay_milter(build, root / f"relay-baseline-{transport}", transport,
                                                 binary=settings.baseline_binary).start()
            rates = {name: [] for name in milters}
            reports = {name: [] for name in milters}
            cpu = {name: [] for name in milters}  # the milter process's CPU per transaction, us
            for milter in milters.values():  # warm up each once, unrecorded
                load(build, milter.socket, settings.warmup, 0, settings.sessions)
            for round_ in range(settings.rounds):
                # Rotate who goes first each round so all see the same machine noise.
                items = list(milters.items())
                order = items[round_ % len(items):] + items[:round_ % len(items)]
                for name, milter in order:
                    pid = milter.pid if isinstance(milter, NoopMilter) else milter.proc.pid
                    before = cpu_seconds(pid)
                    report = load(build, milter.socket, settings.seconds, 0, settings.sessions,
                                  recipients=settings.recipients, seed=round_ + 1)
                    used = cpu_seconds(pid) - before
                    rates[name].append(report["transactionsPerSecond"])
                    reports[name].append(report)
                    cpu[name].append(used * 1e6 / max(1, report["transactions"]))
            # The variant measured what its name says: refusals logged, accepted mail not.
            quiet_log = milters[QUIET_LOG].log()
            if 'level=info msg="relay decision"' in quiet_log or 'level=notice msg="relay decision"' not in quiet_log:
                raise RuntimeError(f"{QUIET_LOG}: its log does not match that level:\n{quiet_log[-2000:]}")
        finally:
            for milter in milters.values():
                milter.stop()
        base = median(rates["no-op C milter"])
        for name, values in rates.items():
            ratios[(transport, name)] = ratio(median(values), base)
            cpu_medians[(transport, name)] = median(cpu[name])
            rows.append([transport, name, " ".join(f"{v:.0f}" for v in values), f"{median(values):.0f}",
                         f"{ratio(median(values), base):.2f}", f"{cpu_medians[(transport, name)]:.0f}",
                         f"0x{reports[name][-1]['negotiatedSteps']}"])
            cells = []
            for name_ in STAGES:
                pairs = [stage(r, name_) for r in reports[name]]
                pairs = [p for p in pairs if p]
                cells.append(f"{median([p[0] for p in pairs]):.0f} / {median([p[1] for p in pairs]):.0f}" if pairs else "no reply")
            stage_rows.append([transport, name] + cells)
            outcome_lines.append(f"- {transport}, {name}: " + "; ".join(
                f"{kind} " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                for kind, counts in sorted(reports[name][-1]["outcomes"].items())))
    for transport in ("unix", "inet"):
        value = ratios[(transport, "relay-milter")]
        notes.append(target(value >= 0.95, f"{transport}: relay-milter at {value:.2f}x the no-op C milter (target >= 0.95x)"))
    if settings.baseline_binary:
        for transport in ("unix", "inet"):
            notes.append(f"- Side by side with the baseline build (`{settings.baseline_binary}`), {transport}: this build at "
                         f"{ratios[(transport, 'relay-milter')] / ratios[(transport, BASELINE)]:.2f}x its throughput, "
                         f"milter CPU per transaction {cpu_medians[(transport, BASELINE)]:.0f} -> "
                         f"{cpu_medians[(transport, 'relay-milter')]:.0f} us.")
    notes.append(f"- The accepted-mail log line alone, outside the milter (`log-line-bench`, this build): {log_line_figure(build, settings)}.")
    notes.append(f"- Not a target, for the admin: with `log_level = \"notice\"` (refusals still logged, accepted mail "
                 f"not), relay-milter runs at {ratios[('unix', QUIET_LOG)]:.2f}x (unix) and "
                 f"{ratios[('inet', QUIET_LOG)]:.2f}x (inet) the no-op.")
    text = "\n".join([
        "## 1. Milter protocol, no MTA",
        "",
        f"`milter-load`: {settings.sessions} concurrent sessions, one milter connection per SMTP session, "
        f"{settings.recipients} recipient(s) per message, mix local=70 relay=20 trusted=10, "
        f"{settings.rounds} alternating rounds of {settings.seconds:g} s after a {settings.warmup:g} s warm-up. The load driver runs on the same cores, "
        "so a milter's CPU per transaction (user + system, from /proc) is the steadier figure.",
        "",
        table(["socket", "milter", "transactions/s per round", "median", "vs no-op", "milter CPU us/transaction",
               "steps negotiated"], rows),
        "",
        "Round-trip latency per stage, median over rounds of p50 / p99, microseconds "
        "(`open` = socket connect + option negotiation; `transaction` = MAIL through end of message; "
        "`no reply` = the milter negotiated not to answer there, so the MTA does not wait):",
        "",
        table(["socket", "milter"] + list(STAGES), stage_rows),
        "",
        "What each milter answered in the last round (relay attempts must be refused by relay-milter and pass the no-op):",
        "",
        *outcome_lines,
        "",
        "Targets:",
        "",
        *notes,
    ])
    return text
