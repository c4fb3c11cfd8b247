"""See Benchmarks/metrics-overhead."""
import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Scripts"))
sys.path.insert(0, str(REPO / "Benchmarks"))
from callback_latency import pct, sample  # noqa: E402
from mailharness.relaymilter import RelayMilter, config_text  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "relay-milter"))
    args = parser.parse_args()
    os.environ["RELAY_MILTER_BIN"] = args.binary
    root = Path(tempfile.mkdtemp(prefix="relay-milter-metrics-bench-"))
    on = RelayMilter(root / "on", config_text()).start()
    off = RelayMilter(root / "off", config_text() + "\n[metrics]\nenabled = false\n").start()
    times = {"on": {"connect": [], "mail": [], "rcpt": []}, "off": {"connect": [], "mail": [], "rcpt": []}}
    try:
        for round_ in range(args.rounds):  # alternate, and swap who goes first, so both see the same noise
            order = (("on", on), ("off", off)) if round_ % 2 == 0 else (("off", off), ("on", on))
            for name, milter in order:
                for stage, values in sample(milter, args.samples).items():
                    times[name][stage] += values
    finally:
        on.stop()
        off.stop()
    print(f"metrics recording on vs off: {args.rounds} alternating rounds x {args.samples} samples, microseconds")
    print("stage    on_p50  on_p99  off_p50  off_p99  p50_ratio  p99_ratio")
    for stage in ("connect", "mail", "rcpt"):
        a, b = times["on"][stage], times["off"][stage]
        print(f"{stage:8} {pct(a, .5):6.0f} {pct(a, .99):7.0f} {pct(b, .5):8.0f} {pct(b, .99):8.0f} "
              f"{pct(a, .5) / pct(b, .5):10.2f} {pct(a, .99) / pct(b, .99):10.2f}")


if __name__ == "__main__":
    main()
