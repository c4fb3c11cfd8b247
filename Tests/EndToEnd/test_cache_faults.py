"""The verdict database going bad (issue 6, point 1): relay-milter keeps
enforcing, says so once, counts it, and recovers."""
import sqlite3

from mailharness.milterclient import MilterClient
from mailharness.relaymilter import config_text


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
    client = MilterClient(milter.address)
    client.negotiate()
    client.connect("client.example", "203.0.113.7")
    client.mail("<a@b.example>")
    assert client.rcpt("<x@elsewhere.example>")[0] == "y"
    client.close()
    # The next start finds a sound database and moves nothing.
    assert milter.stop() == 0
    milter.start()
    assert len(list(root.glob("verdicts.sqlite.corrupt-*"))) == 1
    assert milter.log().count("moved aside") == 1
