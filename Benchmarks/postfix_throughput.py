"""See Benchmarks/postfix-throughput."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Scripts"))
from mailharness.postfix import PostfixInstance, SmtpSink  # noqa: E402
from mailharness.relaymilter import RelayMilter, config_text  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "relay-milter"))
    args = parser.parse_args()
    os.environ["RELAY_MILTER_BIN"] = args.binary
    root = Path(tempfile.mkdtemp(prefix="relay-milter-throughput-"))
    os.chmod(root, 0o755)
    sink = SmtpSink(root / "sink").start()
    on = RelayMilter(root / "on", config_text()).start()
    off = RelayMilter(root / "off", config_text() + "\n[metrics]\nenabled = false\n").start()
    extra = {"default_transport": "discard", "virtual_transport": "discard", "default_process_limit": "200"}
    variants = {"no milter": None, "metrics on": on.postfix_spec, "metrics off": off.postfix_spec}
    postfixes = {name: PostfixInstance(root / name.replace(" ", "-"), sink_port=sink.port, milter=spec, extra=extra).start()
                 for name, spec in variants.items()}
    rates = {name: [] for name in variants}
    try:
        for _ in range(args.rounds):
            for name, postfix in postfixes.items():
                started = time.monotonic()
                subprocess.run(["smtp-source", "-s", "10", "-m", str(args.messages), "-f", "sender@example.test",
                                "-t", "bob@example.test", f"127.0.0.1:{postfix.port}"], check=True)
                rates[name].append(args.messages / (time.monotonic() - started))
    finally:
        for postfix in postfixes.values():
            postfix.stop()
        on.stop()
        off.stop()
        sink.stop()
    print(f"messages/s through Postfix (smtp-source -s 10 -m {args.messages}), {args.rounds} alternating rounds")
    base = statistics.median(rates["no milter"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:12} " + " ".join(f"{v:7.0f}" for v in values) + f"   median {median:7.0f}   vs no milter {median / base:5.2f}")
    print(f"metrics on / off (medians): {statistics.median(rates['metrics on']) / statistics.median(rates['metrics off']):.2f}")


if __name__ == "__main__":
    main()
