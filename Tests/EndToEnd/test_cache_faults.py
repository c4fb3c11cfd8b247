"""The verdict database going bad (issue 6, point 1): damaged, full, deleted
while open, read-only. relay-milter keeps enforcing, says so once, counts
it, recovers, and loses no verdict it could keep."""
import signal
import sqlite3
import subprocess
import sys

import pytest

from mailharness.flood_targets import address
from mailharness.milterclient import MilterClient
from mailharness.ports import free_port, wait_until
from mailharness.relaymilter import REPO, binary, config_text


def finished_tests(milter):
    return milter.log().count('msg="open-relay test finished"')


def connect_from(milter, client_address):
    client = MilterClient(milter.address)
    client.negotiate()
    client.connect("client.example", client_address)
    return client


def refused_at_mail(milter, client_address):
    client = connect_from(milter, client_address)
    reply = client.mail("<a@b.example>")
    client.close()
    return reply[0] == "y"


def hosts_in(database):
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute("select host from verdict")}
    finally:
        connection.close()


def cache_errors(milter, kind):
    return milter.metrics().get(("relay_milter_cache_errors_total", frozenset({("kind", kind)})), 0)


@pytest.fixture
def open_relays(workdir):
    """Recording open-relay targets on 127.1.0.1-40; yields their port."""
    port = free_port()
    targets = subprocess.Popen([sys.executable, "-m", "mailharness.flood_targets", "--networks", "1", "--per-network", "40",
                                "--port", str(port), "--stats", str(workdir / "targets.json"), "--delay", "0"],
                               cwd=REPO / "Scripts", stdout=subprocess.PIPE, text=True)
    try:
        assert targets.stdout.readline().strip() == "ready"
        yield port
    finally:
        targets.terminate()
        targets.wait()


def probing(port, cache_path=None):
    cache = f'[cache]\npath = "{cache_path}"\n' if cache_path else ""
    return config_text(sections=(
        cache + f'[probe]\ntest_domain = "relay-test.example"\nport = {port}\nallow_loopback = true\n'
        'network_interval = 0\nconnect_timeout = 2\ncommand_timeout = 3\ntotal_timeout = 10\n'))


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
    """An 8 MiB tmpfs, so that the disk really fills up (and not so small
    that SQLite's write-ahead log, up to 4 MB, cannot work once it has room)."""
    path = workdir / "small"
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_logged_once_counted_and_survived(start_milter, small_filesystem, open_relays):
    database = small_filesystem / "verdicts.sqlite"
    milter = start_milter(probing(open_relays, database))
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
    assert cache_errors(milter, "write") >= 1
    # Still enforcing, from memory: a tested host is refused at MAIL FROM.
    assert refused_at_mail(milter, address(0, 29))
    # Space again: the next verdict is written with every one kept meanwhile,
    # and the recovery is logged once.
    (small_filesystem / "filler").unlink()
    connect_from(milter, address(0, 35)).close()
    assert wait_until(lambda: "the verdict database takes writes again" in milter.log(), timeout=30), milter.log()[-3000:]
    expected = {address(0, host) for host in [*range(30), 35]}
    assert wait_until(lambda: hosts_in(database) == expected, timeout=10), (hosts_in(database) ^ expected)
    assert milter.proc.poll() is None


def test_a_database_deleted_while_open_is_written_back(start_milter, open_relays):
    milter = start_milter(probing(open_relays))
    database = milter.database
    for host in range(3):
        connect_from(milter, address(0, host)).close()
    assert wait_until(lambda: database.exists() and len(hosts_in(database)) == 3, timeout=30), milter.log()[-3000:]
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)

    # The next write notices, and puts the whole database back, the new verdict included.
    connect_from(milter, address(0, 3)).close()
    assert wait_until(lambda: "written back from the open copy" in milter.log(), timeout=30), milter.log()[-3000:]
    assert wait_until(lambda: database.exists() and hosts_in(database) == {address(0, h) for h in range(4)}, timeout=10)
    assert cache_errors(milter, "deleted") == 1
    assert milter.log().count("the verdict database file was deleted") == 1

    # Deleted again, then SIGHUP: the reload notices too, and the verdicts
    # survive a restart (they are in the file, not only in memory).
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: milter.log().count("written back from the open copy") == 2, timeout=10), milter.log()[-3000:]
    assert milter.stop() == 0
    assert hosts_in(database) == {address(0, h) for h in range(4)}
    milter.start()
    assert refused_at_mail(milter, address(0, 2))
    assert finished_tests(milter) == 4, "a host was tested again after the restart"


def test_a_read_only_database_is_read_and_written_once_it_can_be(start_milter, small_filesystem, open_relays):
    database = small_filesystem / "verdicts.sqlite"
    config = probing(open_relays, database)
    milter = start_milter(config)
    assert milter.stop() == 0
    listed = address(0, 20)
    subprocess.run([binary(), "cache", "set", listed, "open", "--config", str(milter.config_path)], check=True)
    result = subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    milter.start()
    log = milter.log()
    assert "cannot write the verdict database; its verdicts are read" in log, log[-3000:]
    assert cache_errors(milter, "open") == 1
    # The verdicts on the read-only file still count; new ones live in memory.
    assert refused_at_mail(milter, listed)
    connect_from(milter, address(0, 1)).close()
    assert wait_until(lambda: finished_tests(milter) == 1, timeout=30), milter.log()[-3000:]
    assert refused_at_mail(milter, address(0, 1))
    assert finished_tests(milter) == 1

    # Writable again: the next write (or a SIGHUP) opens it for writing and
    # writes what was kept.
    subprocess.run(["mount", "-o", "remount,rw", str(small_filesystem)], check=True)
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: "the verdict database can be written again" in milter.log(), timeout=10), milter.log()[-3000:]
    assert wait_until(lambda: hosts_in(database) == {listed, address(0, 1)}, timeout=10)
    # Reopening read the file into memory; the reload did not read it again.
    # A second SIGHUP's "config reloaded" line comes after all the first logged.
    reloads = milter.log().count('msg="config reloaded"')
    milter.signal(signal.SIGHUP)
    assert wait_until(lambda: milter.log().count('msg="config reloaded"') == reloads + 1, timeout=10)
    first_reload = milter.log().split('msg="config reloaded"')[-2]
    assert first_reload.count('msg="verdict cache loaded"') == 1, first_reload
    assert refused_at_mail(milter, listed) and refused_at_mail(milter, address(0, 1))
    assert milter.proc.poll() is None
