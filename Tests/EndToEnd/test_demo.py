"""The README's demo command stays true: it sets up, shows accepts and rejects, and stops."""
import subprocess

from mailharness.relaymilter import REPO


def test_demo_once_shows_accepts_and_rejects():
    result = subprocess.run([str(REPO / "Scripts" / "demo"), "--once"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)" in out
    assert "Relay access denied (relay.routed_address)" in out
    assert "Delivered to the local maildir: 1; relayed to the outside world (smtp-sink): ['<friend@elsewhere.example>']" in out
    assert out.count('msg="relay decision"') == 4
