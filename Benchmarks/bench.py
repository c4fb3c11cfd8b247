"""See Scripts/bench: runs the benchmark sections and writes BENCHMARKS.md."""
import argparse
import datetime
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import cache, fleet, inflight, metrics, postfix, protocol  # noqa: E402
from suite.processes import REPO, Build  # noqa: E402
from suite.report import machine  # noqa: E402

SECTIONS = {"protocol": protocol, "postfix": postfix, "cache": cache, "inflight": inflight, "metrics": metrics, "fleet": fleet}
BEGIN, END = "<!-- bench:begin (written by Scripts/bench; edit outside these markers) -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Settings:
    rounds: int = 5
    seconds: float = 5.0
    warmup: float = 1.0
    sessions: int = 8
    recipients: int = 1
    messages: int = 2000
    smtp_sessions: int = 10
    cache_sizes: tuple = (10_000, 100_000, 1_000_000)
    cache_lookups: int = 200_000
    tests_in_flight: int = 1000
    log_lines: int = 300_000
    # Another relay-milter binary measured beside this build in section 1.
    baseline_binary: str = None


# Tiny counts: proves every harness still runs and prints; measures nothing.
SMOKE = Settings(rounds=1, seconds=0.5, warmup=0.2, sessions=2, messages=20, smtp_sessions=2,
                 cache_sizes=(1000, 5000), cache_lookups=2000, tests_in_flight=30, log_lines=2000)


def write_report(path: Path, body: str):
    """Replaces the generated part of BENCHMARKS.md and keeps the hand-written notes."""
    old = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in old or END not in old:
        old = old.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = old.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def main():
    parser = argparse.ArgumentParser(description="relay-milter benchmarks, each beside its baseline in one run.")
    parser.add_argument("--smoke", action="store_true", help="tiny counts; checks the harness, writes no BENCHMARKS.md")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--build-dir", required=True, help="where relay-milter and the load tools were built")
    parser.add_argument("--noop-milter", required=True)
    parser.add_argument("--output", help="where to write the report (default BENCHMARKS.md; none with --smoke)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--baseline-binary", help="another relay-milter build (say, a copy of main's) that section 1 "
                        "runs in the same rounds: a change's effect, measured side by side")
    args = parser.parse_args()
    settings = SMOKE if args.smoke else Settings()
    overrides = {k: getattr(args, k) for k in ("rounds", "seconds", "sessions", "messages", "baseline_binary")
                 if getattr(args, k) is not None}
    settings = replace(settings, **overrides)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")

    build = Build(Path(args.build_dir), Path(args.noop_milter))
    root = Path(tempfile.mkdtemp(prefix="relay-milter-bench-"))
    root.chmod(0o755)  # Postfix's daemons must reach their directories below it
    # Scripts/bench passes --build-dir and --noop-milter first; what follows is the user's.
    user_arguments = sys.argv[sys.argv.index("--noop-milter") + 2:]
    command = " ".join(["Scripts/bench", *user_arguments])
    parts = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with `{command.strip()}`"
        f" ({'smoke: tiny counts, figures mean nothing' if args.smoke else 'release build'}).",
        "",
        f"Machine: {machine()}.",
    ]
    started = time.monotonic()
    for name in chosen:
        section_started = time.monotonic()
        try:
            text = SECTIONS[name].run(build, root, settings)
        except Exception:
            print(f"section {name} failed; its files (logs, Postfix maillogs) are kept in {root}", file=sys.stderr)
            raise
        print(text, flush=True)
        print(f"({name}: {time.monotonic() - section_started:.0f} s)\n", flush=True)
        parts += ["", text]
    shutil.rmtree(root, ignore_errors=True)
    body = "\n".join(parts)
    print(f"all sections: {time.monotonic() - started:.0f} s")
    output = args.output or (None if args.smoke else str(REPO / "BENCHMARKS.md"))
    if output:
        write_report(Path(output), body)
        print(f"written to {output}")


if __name__ == "__main__":
    main()
