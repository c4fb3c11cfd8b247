"""The README's demo command stays true: it sets up, runs the shipped config
(log-only: nothing refused, the refusals logged), switches a copy to enforce
with a reload, shows the refusals, and stops."""
import subprocess

from mailharness.relaymilter import REPO


def test_demo_once_shows_log_only_then_enforce():
    result = subprocess.run([str(REPO / "Scripts" / "demo"), "--once"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    shipped, enforced = result.stdout.split('2. mode = "enforce"')

    # As shipped: Postfix (which trusts all of 127/8 here) alone decides; relay-milter says what it would refuse.
    assert "5.7.1" not in shipped, shipped
    assert "relayed to the outside world (smtp-sink): ['<friend@elsewhere.example>', '<victim@elsewhere.example>']" in shipped
    assert shipped.count("decision.would=reject") == 2, shipped
    assert "decision.reason=relay.routed_address decision.verdict=deny decision.would=reject" in shipped

    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)" in enforced
    assert "Relay access denied (relay.routed_address)" in enforced
    assert "Delivered to the local maildir: 1; relayed to the outside world (smtp-sink): ['<friend@elsewhere.example>']" in enforced
    assert enforced.count('msg="relay decision"') == 4 and "decision.would" not in enforced, enforced
