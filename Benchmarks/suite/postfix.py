"""2. End to end through Postfix: smtp-source -> a private Postfix -> discard,
with no milter, the no-op C milter (as libmilter's defaults have it, and
asking for the fewest steps a relay-policy milter can do with) and
relay-milter, unix and inet sockets, alternating rounds in one run."""
import subprocess
import time

from mailharness.postfix import PostfixInstance, SmtpSink

from .processes import NoopMilter, postfix_spec, relay_milter
from .report import median, ratio, table, target


def fewest_steps(transport):
    """The variant name of the no-op that asks for the fewest steps."""
    return f"no-op C milter, fewest steps, {transport}"


def run(build, root, settings):
    sink = SmtpSink(root / "sink").start()
    milters = {}
    for transport in ("unix", "inet"):
        milters[f"no-op C milter, {transport}"] = NoopMilter(build, root / f"pf-noop-{transport}", transport).start()
        milters[fewest_steps(transport)] = NoopMilter(build, root / f"pf-fewest-{transport}", transport,
                                                   fewest_steps=True).start()
        milters[f"relay-milter, {transport}"] = relay_milter(build, root / f"pf-relay-{transport}", transport).start()
    # Discard after the queue: the figure is what smtpd (and its milter) accept per second.
    extra = {"default_transport": "discard", "virtual_transport": "discard", "default_process_limit": "200"}
    variants = {"no milter": None, **{name: postfix_spec(m.socket) for name, m in milters.items()}}
    postfixes = {}
    rates = {name: [] for name in variants}
    try:
        for index, (name, spec) in enumerate(variants.items()):
            postfixes[name] = PostfixInstance(root / f"postfix-{index}", sink_port=sink.port, milter=spec, extra=extra).start()
        for round_ in range(settings.rounds):
            order = list(postfixes.items()) if round_ % 2 == 0 else list(reversed(postfixes.items()))
            for name, postfix in order:
                started = time.monotonic()
                subprocess.run(["smtp-source", "-s", str(settings.smtp_sessions), "-m", str(settings.messages),
                                "-f", "sender@example.test", "-t", "bob@example.test", f"127.0.0.1:{postfix.port}"],
                               check=True, timeout=600)
                rates[name].append(settings.messages / (time.monotonic() - started))
        # A milter that failed or refused would skew the figures; count what Postfix logged.
        refused = {name: sum(1 for line in postfix.log().splitlines()
                             if "milter" in line and ("warning:" in line or "reject" in line))
                   for name, postfix in postfixes.items()}
    finally:
        for postfix in postfixes.values():
            postfix.stop()
        for milter in milters.values():
            milter.stop()
        sink.stop()
    base = median(rates["no milter"])
    rows = []
    for name, values in rates.items():
        noop = median(rates[f"no-op C milter, {name.rsplit(', ', 1)[1]}"]) if ", " in name else None
        rows.append([name, " ".join(f"{v:.0f}" for v in values), f"{median(values):.0f}", f"{ratio(median(values), base):.2f}",
                     f"{ratio(median(values), noop):.2f}" if noop else "", refused[name]])
    notes = []
    for transport in ("unix", "inet"):
        ours = median(rates[f"relay-milter, {transport}"])
        noop = median(rates[f"no-op C milter, {transport}"])
        notes.append(target(ours >= 0.95 * noop, f"{transport}: relay-milter at {ratio(ours, noop):.2f}x the no-op C milter (target >= 0.95x)"))
        notes.append(target(ours >= 0.8 * base, f"{transport}: relay-milter at {ratio(ours, base):.2f}x Postfix with no milter (target >= 0.8x)"))
        fewest = median(rates[fewest_steps(transport)])
        notes.append(f"- Not a target, the floor: {transport}: the no-op asking for the fewest steps reaches "
                     f"{ratio(fewest, base):.2f}x Postfix with no milter; relay-milter at {ratio(ours, fewest):.2f}x it.")
    text = "\n".join([
        "## 2. End to end through Postfix",
        "",
        f"`smtp-source -s {settings.smtp_sessions} -m {settings.messages}` (one message per SMTP session, local recipient) "
        f"into a private Postfix on loopback that discards after the queue; {settings.rounds} alternating rounds. "
        "The no-op with the fewest steps has Postfix skip every step but RCPT, end of message and (over TCP) DATA: "
        "the least any relay-policy milter must receive, so what Postfix pays for one whatever it does.",
        "",
        table(["variant", "messages/s per round", "median", "vs no milter", "vs no-op C milter", "milter errors in log"], rows),
        "",
        "Targets:",
        "",
        *notes,
    ])
    return text
