"""Defence in depth: a Postfix deliberately configured as an open relay
(mynetworks = 0.0.0.0/0). nmap's smtp-open-relay, run from 127.0.0.2, finds
it open on its own and closed once relay-milter is attached, while
relay-milter's trusted networks stay narrow."""
import pytest

from mailharness.nmap import nmap_open_relay
from mailharness.relaymilter import config_text


def test_nmap_finds_the_bare_postfix_open(start_postfix):
    bare = start_postfix(name="open-relay", mynetworks="0.0.0.0/0")
    verdict = nmap_open_relay(bare.port)
    assert verdict.startswith("Server is an open relay (16/16 tests)"), verdict


@pytest.mark.parametrize("socket_kind", ["inet", "unix"])
def test_nmap_finds_it_closed_with_relay_milter(start_milter, start_postfix, sink, socket_kind):
    milter = start_milter(config_text(), unix=socket_kind == "unix")
    guarded = start_postfix(name="guarded", mynetworks="0.0.0.0/0", milter=milter.postfix_spec)
    verdict = nmap_open_relay(guarded.port)
    assert "doesn't seem to be an open relay" in verdict, verdict
    decisions = milter.decisions(at_least=16)
    assert decisions, "nmap's tests never reached relay-milter"
    assert all("client.address=127.0.0.2" in line for line in decisions)
    refused = [line for line in decisions if "decision.action=reject" in line]
    assert len(refused) >= 16, "\n".join(decisions)
    assert sink.recipients() == []
