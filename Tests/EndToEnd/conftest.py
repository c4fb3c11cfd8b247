"""Fixtures for the end-to-end suites: real Postfix, smtp-sink and
relay-milter processes on loopback, each test with its own directory and
ports, all stopped afterwards."""
import concurrent.futures
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Scripts"))

from mailharness import sendmail  # noqa: E402
from mailharness.postfix import PostfixInstance, SmtpSink  # noqa: E402
from mailharness.relaymilter import RelayMilter, binary  # noqa: E402


def pytest_configure(config):
    if not Path(binary()).exists():
        raise pytest.UsageError(f"{binary()} is missing: run `swift build` first (Scripts/test does)")


@pytest.fixture
def workdir():
    # Postfix's unprivileged daemons must reach into it: not pytest's 0700 tmp_path.
    path = Path(tempfile.mkdtemp(prefix="relay-milter-e2e-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sink(workdir):
    s = SmtpSink(workdir / "sink").start()
    yield s
    s.stop()


@pytest.fixture
def start_milter(workdir):
    started = []

    def start(config, name="milter", socket=None, args=(), unix=False):
        if unix:
            # A unix socket as deployed: in a directory smtpd can reach, group postfix.
            socket = f"unix:{workdir}/{name}.sock"
            config = '[milter]\nsocket_group = "postfix"\n' + config
        m = RelayMilter(workdir / name, config, socket=socket).start(*args)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture
def start_postfix(workdir, sink):
    started = []

    def start(name="postfix", **kwargs):
        p = PostfixInstance(workdir / name, sink_port=sink.port, **kwargs).start()
        started.append(p)
        return p

    yield start
    # Side by side: a Postfix master takes ~1.5 s to exit after its stop.
    # list() so that an instance's failure to stop fails the test.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
        list(pool.map(PostfixInstance.stop, started))


@pytest.fixture
def start_sendmail(workdir, sink):
    if not sendmail.available():
        pytest.fail(f"{sendmail.BINARY} is missing: run Scripts/install-sendmail (Scripts/install-deps does)")
    started = []

    def start(name="sendmail", **kwargs):
        s = sendmail.SendmailInstance(workdir / name, sink_port=sink.port, **kwargs).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
