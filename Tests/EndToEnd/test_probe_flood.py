"""Our open-relay tests can't be turned into a weapon (issue 6, point 7). A
flood of MTA connections from 100 distinct loopback clients meets
relay-milter with small limits, and recording SMTP targets (open relays that
answer slowly, up to 354) on those addresses and on 20 more that never
connect. What the targets saw must show: tests in flight never above the cap,
one tested host per network per interval, excluded networks and hosts that
never connected never contacted, the queue bounded with drops counted, and
nothing sent after a 354."""
import json
import subprocess
import sys
import time

from mailharness.flood_targets import address
from mailharness.milterclient import MilterClient
from mailharness.ports import free_port
from mailharness.relaymilter import REPO, config_text

COMMANDS = ("EHLO ", "HELO ", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "QUIT")
MAX_IN_FLIGHT = 2
QUEUE_SIZE = 10


def most_hosts_busy_at_once(spans):
    """The most distinct hosts whose connections' busy spans overlap at one instant."""
    return max(len({host for host, start, end in spans if start <= instant <= end}) for _, instant, _ in spans)


def test_a_flood_of_clients_stays_within_every_limit(start_milter, workdir):
    port = free_port()
    stats_file = workdir / "targets.json"
    targets = subprocess.Popen([sys.executable, "-m", "mailharness.flood_targets", "--networks", "6", "--per-network", "20",
                                "--port", str(port), "--stats", str(stats_file)], cwd=REPO / "Scripts",
                               stdout=subprocess.PIPE, text=True)
    try:
        assert targets.stdout.readline().strip() == "ready"
        milter = start_milter(config_text(sections=(
            f'[probe]\ntest_domain = "relay-test.example"\nport = {port}\nallow_loopback = true\n'
            # 127.0.0.0/8 is lifted by allow_loopback; the narrower exclusion must hold.
            'exclude_networks = ["127.0.0.0/8", "127.1.0.0/24"]\n'
            f'max_in_flight = {MAX_IN_FLIGHT}\nqueue_size = {QUEUE_SIZE}\nnetwork_interval = 3600\n'
            'connect_timeout = 2\ncommand_timeout = 3\ntotal_timeout = 6\n')))
        # The flood: networks 0 (excluded) to 4, twenty clients each, each to
        # MAIL FROM (where a test is queued); network 5 never connects.
        flood = [address(network, host) for network in range(5) for host in range(20)]
        for client_address in flood:
            client = MilterClient(milter.address)
            client.negotiate()
            client.connect("flood.example", client_address)
            client.mail("<flood@example.net>")
            client.close()
        time.sleep(9)  # every test has ended by its total timeout
        seen = json.loads(stats_file.read_text())
        metrics = milter.metrics()
    finally:
        targets.terminate()
        targets.wait()

    contacted = set(seen["connections"])
    by_network = {}
    for host in contacted:
        by_network.setdefault(host.rsplit(".", 1)[0], set()).add(host)
    assert len(contacted) >= MAX_IN_FLIGHT, seen["connections"]  # tests did run
    assert most_hosts_busy_at_once(seen["spans"]) <= MAX_IN_FLIGHT, seen["spans"]
    assert all(len(hosts) == 1 for hosts in by_network.values()), by_network
    assert not any(host.startswith("127.1.0.") for host in contacted), "an excluded network was contacted"
    assert not any(host.startswith("127.1.5.") for host in contacted), "a host that never connected was contacted"
    assert contacted <= set(flood)
    # Only SMTP commands; targets said 354 and got nothing after it.
    assert "DATA" in seen["lines"], "no test reached DATA: the no-content check would prove nothing"
    assert all(line.startswith(COMMANDS) for line in seen["lines"]), [l for l in seen["lines"] if not l.startswith(COMMANDS)]
    assert seen["after_354"] == []
    dropped = metrics.get(("relay_milter_probe_dropped_total", frozenset({("reason", "queue_full")})), 0)
    assert dropped > 0, "the queue never filled"
    assert metrics[("relay_milter_probe_queue_depth", frozenset())] <= QUEUE_SIZE
    assert "open-relay test queue full; tests dropped" in milter.log()
