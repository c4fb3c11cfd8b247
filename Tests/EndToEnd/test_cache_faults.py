"""The verdict database going bad (issue 6, point 1): relay-milter keeps
enforcing, says so once, counts it, and recovers."""
import sqlite3
import subprocess
import sys

import pytest

from mailharness.flood_targets import address
from mailharness.milterclient import MilterClient
from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import REPO, config_text


def finished_tests(milter):
    return milter.log().count('msg="open-relay test finished"')


def connect_from(milter, client_address):
    client = MilterClient(milter.address)
    client.negotiate()
    client.connect("client.example", client_address)
    return client


def test_a_damaged_database_is_moved_aside_and_rebuilt(start_milter, workdir):
    root = workdir / "milter"
    root.mkdir()
    garbage = b"this was a verdict database once\x00" * 200
    (root / "verdicts.sqlite").write_bytes(garbage)

    milter = start_milter(config_text())
    log = milter.log()
    assert log.count("the verdict database was damaged: moved aside, starting with an empty cache") == 1, log
    moved = list(root.glob("verdicts.sqlite.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    # A fresh database in its place, which the daemon uses.
    tables = {row[0] for row in sqlite3.connect(root / "verdicts.sqlite").execute("select name from sqlite_master")}
    assert "verdict" in tables, tables
    assert milter.metrics()[("relay_milter_cache_errors_total", frozenset({("kind", "corrupt")}))] == 1
    # Enforcement never depended on it.
    client = connect_from(milter, "203.0.113.7")
    client.mail("<a@b.example>")
    assert client.rcpt("<x@elsewhere.example>")[0] == "y"
    client.close()
    # The next start finds a sound database and moves nothing.
    assert milter.stop() == 0
    milter.start()
    assert len(list(root.glob("verdicts.sqlite.corrupt-*"))) == 1
    assert milter.log().count("moved aside") == 1


@pytest.fixture
def small_filesystem(workdir):
    """A 256 KiB tmpfs, so that the disk really fills up."""
    path = workdir / "small"
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_logged_once_counted_and_survived(start_milter, workdir, small_filesystem):
    port = free_port()
    targets = subprocess.Popen([sys.executable, "-m", "mailharness.flood_targets", "--networks", "1", "--per-network", "40",
                                "--port", str(port), "--stats", str(workdir / "targets.json"), "--delay", "0"],
                               cwd=REPO / "Scripts", stdout=subprocess.PIPE, text=True)
    try:
        assert targets.stdout.readline().strip() == "ready"
        milter = start_milter(config_text(sections=(
            f'[cache]\npath = "{small_filesystem}/verdicts.sqlite"\n'
            f'[probe]\ntest_domain = "relay-test.example"\nport = {port}\nallow_loopback = true\n'
            'network_interval = 0\nconnect_timeout = 2\ncommand_timeout = 3\ntotal_timeout = 10\n')))
        # Fill the disk, then have 30 hosts tested: their verdicts cannot all be written.
        with open(small_filesystem / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError:
                pass
        for host in range(30):
            connect_from(milter, address(0, host)).close()
        assert wait_until(lambda: finished_tests(milter) >= 30, timeout=60), milter.log()[-3000:]
        assert wait_until(lambda: "cannot write to the verdict database" in milter.log(), timeout=10), milter.log()[-3000:]
        assert milter.log().count("cannot write to the verdict database") == 1
        writes_failed = milter.metrics()[("relay_milter_cache_errors_total", frozenset({("kind", "write")}))]
        assert writes_failed >= 1
        # Still enforcing, from memory: a tested host is refused at MAIL FROM.
        client = connect_from(milter, address(0, 29))
        reply = client.mail("<a@b.example>")
        assert reply[0] == "y", reply
        client.close()
        # Space again: the next verdict is written, and the recovery is logged once.
        (small_filesystem / "filler").unlink()
        connect_from(milter, address(0, 35)).close()
        assert wait_until(lambda: "the verdict database takes writes again" in milter.log(), timeout=30), milter.log()[-3000:]
        assert milter.proc.poll() is None
    finally:
        targets.terminate()
        targets.wait()
