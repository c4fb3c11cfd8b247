"""A shared verdict database that misbehaves after letting relay-milter in
(issue 8, the fleet): a query it never answers must fail, and the instance
must reconnect, not wait for good. postgres-nio (1.33) drops a query written
to a connection that has already closed and never answers it; that is what
stalled a fleet sync loop in CI (see `SharedVerdictStore.query`).

The server here is a stand-in that speaks just enough of PostgreSQL's
protocol: it reads the startup message, answers that the client is in,
idle and ready, then hangs up or ignores everything after. A real server
cannot be made to do either on cue."""
import socket
import struct
import threading
import time

import pytest

from mailharness.ports import wait_until
from mailharness.postgres import config_section
from mailharness.relaymilter import config_text

SSL_REQUEST = 80877103
PROTOCOL_3 = 196608


class StandInServer:
    """PostgreSQL as far as the login, on 127.0.0.1, then `after_login`:
    "hang up" or "fall silent". Counts the logins it let through and, when
    silent, how long each client waited before it closed the connection."""

    def __init__(self, after_login):
        self.after_login = after_login
        self.logins = 0
        self.waited = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    @staticmethod
    def _read(connection, count):
        data = b""
        while len(data) < count:
            chunk = connection.recv(count - len(data))
            if not chunk:
                raise ConnectionError("client hung up")
            data += chunk
        return data

    def _serve(self, connection):
        try:
            while True:
                length, code = struct.unpack("!II", self._read(connection, 8))
                self._read(connection, length - 8)
                if code == SSL_REQUEST:
                    connection.sendall(b"N")  # no TLS here; the config says tls = "disable" anyway
                    continue
                assert code == PROTOCOL_3, code
                break
            connection.sendall(
                b"R" + struct.pack("!II", 8, 0)          # AuthenticationOk
                + b"K" + struct.pack("!III", 12, 1, 2)   # BackendKeyData
                + b"Z" + struct.pack("!I", 5) + b"I")    # ReadyForQuery, idle
            self.logins += 1
            if self.after_login == "hang up":
                connection.close()
                return
            logged_in = time.monotonic()
            while connection.recv(65536):
                pass  # fall silent: read the queries, answer none
            self.waited.append(time.monotonic() - logged_in)
        except (OSError, ConnectionError):
            pass

    def stop(self):
        self.stopped.set()
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def stand_in():
    servers = []

    def start(after_login):
        server = StandInServer(after_login)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def shared_config(workdir, port):
    return config_text(sections=f'[cache]\npath = "{workdir}/verdicts.sqlite"\n' + config_section(port, "a"))


def errors(milter, kind):
    return milter.metrics().get(("relay_milter_shared_store_errors_total", frozenset({("kind", kind)})), 0)


def test_a_query_after_the_server_hung_up_fails_and_the_instance_reconnects(workdir, start_milter, stand_in):
    server = stand_in("hang up")
    milter = start_milter(shared_config(workdir, server.port))
    # The first query (the schema check) goes to a connection the server has
    # closed. It must fail at once, so the loop reconnects after its 1 s
    # back-off: a third login within seconds, where the lost query would have
    # left one login and a loop waiting for good.
    assert wait_until(lambda: server.logins >= 3, timeout=20), (server.logins, milter.log())
    assert errors(milter, "sync") >= 2, milter.log()
    assert milter.metrics().get(("relay_milter_shared_store_up", frozenset()), None) == 0
    log = milter.log()
    assert "shared verdict database unreachable; enforcing from memory" in log, log
    # The first failure's words: ours when the hang-up came first (in every
    # run here but one, a CI run against the release build), postgres-nio's
    # when the query was already on its way.
    assert ("the connection to the shared database has closed" in log
            or "PSQLError(code: serverClosedConnection" in log), log
    # Said once per outage, not at each reconnection.
    assert log.count("shared verdict database unreachable") == 1, log


def test_a_query_the_server_never_answers_times_out_and_the_instance_reconnects(workdir, start_milter, stand_in):
    server = stand_in("fall silent")
    # The config's query_timeout (30 s by default), shortened for the test.
    milter = start_milter(shared_config(workdir, server.port) + 'query_timeout = "3s"\n')
    assert wait_until(lambda: server.logins >= 1, timeout=10), milter.log()
    # The schema check waits for the query timeout, no longer: then the
    # connection is closed and, after the back-off, opened again.
    assert wait_until(lambda: server.logins >= 2, timeout=15), (server.logins, milter.log())
    assert 2.5 < server.waited[0] < 6, server.waited
    log = milter.log()
    assert "the shared database did not answer a query in 3.0 seconds; the connection was closed" in log, log
    assert errors(milter, "sync") >= 1, log
