"""`Scripts/bench --smoke` still runs every section and prints its figures
(the build under test, tiny counts). Speed is never asserted here; what is asserted is
that each harness measured what it says it measured."""
import re
import subprocess
from pathlib import Path

import pytest

from mailharness import milterload
from mailharness.noopmilter import NoopMilter
from mailharness.relaymilter import REPO, binary


@pytest.fixture(scope="module")
def smoke():
    # The build under test, already built; the same binary stands in for a
    # baseline build: the harness must run it in the same rounds.
    result = subprocess.run([str(REPO / "Scripts" / "bench"), "--smoke", "--build-dir", str(Path(binary()).parent),
                             "--baseline-binary", binary()],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def section(text, number):
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"section {number} missing:\n{text}"
    return match.group(0)


def test_protocol_load_ran_both_milters_on_both_sockets(smoke):
    text = section(smoke, 1)
    for transport in ("unix", "inet"):
        for milter in ("no-op C milter", "relay-milter", "relay-milter, log_level notice", "relay-milter, baseline build"):
            assert re.search(rf"^\| {transport} \| {milter} \| \d+ \| \d+ \| [\d.]+ \| \d+ \| 0x[0-9a-f]+ \|$", text, re.M), text
    # The driver really spoke the protocol: relay-milter refused the relay attempts
    # at RCPT, and the no-op let them through to end of message.
    assert re.search(r"unix, relay-milter: .*relay rcpt:reject 550=\d+", text), text
    assert re.search(r"unix, no-op C milter: .*relay eom:continue=\d+", text), text
    assert "targets:" in text.lower()
    # The log line alone was measured too, with the part its caller pays.
    assert re.search(r"^- The accepted-mail log line alone, .*: \d+ ns per line, of which building the event's metadata \d+ ns \(2000 lines\)\.$", text, re.M), text
    assert re.search(r"^- Side by side with the baseline build \(`.*/relay-milter`\), unix: this build at [\d.]+x its throughput", text, re.M), text


def test_postfix_section_measured_every_variant_without_milter_errors(smoke):
    text = section(smoke, 2)
    variants = ["no milter"] + [f"{milter}, {transport}" for transport in ("unix", "inet")
                                for milter in ("no-op C milter", "no-op C milter, fewest steps", "relay-milter")]
    for variant in variants:
        row = re.search(rf"^\| {re.escape(variant)} \| \d+ \| \d+ \| [\d.]+ \|[^|]*\| (\d+) \|$", text, re.M)
        assert row, f"{variant}:\n{text}"
        assert row.group(1) == "0", f"Postfix logged milter errors for {variant}:\n{text}"


@pytest.mark.parametrize("transport,data_skipped", [("unix", True), ("inet", False)])
def test_the_fewest_steps_noop_skips_what_section_2_says(smoke, tmp_path, transport, data_skipped):
    # Section 2's floor is only a floor if the MTA really skips those steps:
    # read what the no-op negotiates with the protocol driver (Scripts/bench built it).
    noop = NoopMilter(REPO / ".build" / "bench" / "noop-milter", tmp_path, transport, fewest_steps=True).start()
    try:
        report = milterload.run(Path(binary()).parent / "milter-load", noop.socket, 0.3, 0, 1)
    finally:
        noop.stop()
    steps = int(report["negotiatedSteps"], 16)
    no_connect, no_helo, no_mail, no_rcpt, no_data = 0x1, 0x2, 0x4, 0x8, 0x200
    assert steps & (no_connect | no_helo | no_mail) == no_connect | no_helo | no_mail, hex(steps)
    assert not steps & no_rcpt, hex(steps)
    assert bool(steps & no_data) == data_skipped, hex(steps)


def test_cache_section_reports_lookups_and_daemon_memory(smoke):
    text = section(smoke, 3)
    rows = re.findall(r"^\| ([\d,]+) \| [\d.]+ \| \d+ \| \d+ \| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \| (\d+) \|$", text, re.M)
    assert [r[0] for r in rows] == ["1,000", "5,000"], text
    assert all(int(r[1]) > 0 for r in rows)


def test_inflight_section_ran_the_tests_it_queued(smoke):
    text = section(smoke, 4)
    # Two tables, relay-milter's and the no-op's, each timed in both phases.
    assert len(re.findall(r"^\| transaction \| \d+ \| \d+ \| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \|$", text, re.M)) == 2, text
    # 2 x 30 targets, a third of them tarpits: every test finished with the verdict its target earns.
    assert "verdicts of all 60 tests: closed=41, unreachable=19." in text, text
    assert re.search(r"^Per round, transaction p99 idle / busy and the tests that finished during the busy phase: "
                     r"relay-milter \d+ / \d+ us, \d+ finished; the no-op \d+ / \d+ us, \d+ finished\. ", text, re.M), text
    assert re.search(r"^relay-milter's probe event loop used [\d.]+ ms of CPU per test \([\d.]+ s for the 60 tests of the "
                     r"busy phases,", text, re.M), text
    assert re.search(r"^- (met|\*\*missed\*\*): transaction p99 with tests in flight at [\d.]+x idle, and at [\d.]+x "
                     r"the no-op C milter's busy/idle \([\d.]+x\) beside the same tests \(target <= 1\.1x, both\)$", text, re.M), text


def test_metrics_section_compares_on_and_off(smoke):
    text = section(smoke, 5)
    assert re.search(r"^\| transactions/s \| \d+ \|  \| \d+ \|  \| [\d.]+ \|  \|$", text, re.M), text


def test_fleet_section_timed_propagation_and_both_stores(smoke):
    text = section(smoke, 6)
    # Every verdict committed by the other instance arrived (the harness fails otherwise) and was timed.
    assert re.search(r"^\| 20 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", text, re.M), text
    assert re.search(r"^\| transactions/s \| \d+ \|  \| \d+ \|  \| [\d.]+ \|  \|$", text, re.M), text
