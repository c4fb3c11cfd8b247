"""Small scripted servers on loopback for the parts Postfix can't play:
an AUTH-required server, a 554 banner, a tarpit, a slow starter, a non-SMTP
listener, and a recording open relay that proves what a client sent after 354."""
import socket
import threading
import time

from .ports import free_port


class FakeServer:
    """Accepts connections on 127.0.0.1 and runs `behaviour(conn, server)` for each."""

    def __init__(self, behaviour, host="127.0.0.1"):
        self.behaviour = behaviour
        self.host = host
        self.port = free_port(host)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, self.port))
        self.sock.listen(1024)
        self.stopped = False
        self.connections = 0
        self.after_354 = []  # bytes received after each 354, per connection
        self.reads = []  # the commands of each read (recording_open_relay)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            self.behaviour(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


def lines(conn):
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        yield line.rstrip(b"\r").decode(errors="replace")


def smtp_dialogue(conn, answer, banner="220 fake.example ESMTP"):
    conn.sendall((banner + "\r\n").encode())
    for line in lines(conn):
        reply = answer(line.upper())
        conn.sendall((reply + "\r\n").encode())
        if line.upper() == "QUIT":
            return


def auth_required(conn, server):
    def answer(cmd):
        if cmd.startswith("EHLO"):
            return "250-fake.example\r\n250 AUTH PLAIN LOGIN"
        if cmd.startswith("MAIL"):
            return "530 5.7.0 Authentication required"
        if cmd == "QUIT":
            return "221 bye"
        return "250 ok"
    smtp_dialogue(conn, answer)


def banner_554(conn, server):
    conn.sendall(b"554 5.7.1 fake.example: no SMTP service for you\r\n")
    for line in lines(conn):
        conn.sendall(b"503 5.5.1 go away\r\n")
        if line.upper() == "QUIT":
            return


def hostile_banner(conn, server):
    # A closed server whose banner and replies carry terminal escape sequences
    # (a window title, a colour) and a spreadsheet formula.
    conn.sendall(b"220 =cmd|' /c calc'!A1 \x1b]2;owned\x07\x1b[31mESMTP\r\n")
    for line in lines(conn):
        verb = line.upper()[:4]
        if verb in ("EHLO", "HELO"):
            conn.sendall(b"250 fake.example\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"554 5.7.1 no relaying \x1b[2J\r\n")


def tarpit(conn, server):
    # Accepts the connection and never says a word.
    while not server.stopped:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue


def not_smtp(conn, server):
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def recording_open_relay(conn, server, pipelining=False):
    """Accepts every recipient and answers DATA with 354, then records every
    byte the client sends afterwards until it closes (or 5 s pass). Answers
    the commands of each read together, as a pipelining server does, and
    keeps them in `server.reads`; with `pipelining` it offers PIPELINING."""
    conn.sendall(b"220 open.fake.example ESMTP\r\n")
    ehlo = b"250-open.fake.example\r\n250 PIPELINING" if pipelining else b"250 open.fake.example"
    buf = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        buf += chunk
        commands, replies = [], b""
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            cmd = line.rstrip(b"\r").decode(errors="replace").upper()
            commands.append(cmd)
            if cmd == "DATA":
                with server.lock:
                    server.reads.append(commands)
                conn.sendall(replies + b"354 End data with <CR><LF>.<CR><LF>\r\n")
                received = buf
                conn.settimeout(5)
                try:
                    while True:
                        more = conn.recv(4096)
                        if not more:
                            break
                        received += more
                except socket.timeout:
                    received += b"<still open after 5 s>"
                with server.lock:
                    server.after_354.append(received)
                return
            replies += {"EHLO": ehlo, "QUIT": b"221 bye"}.get(cmd.split(" ")[0], b"250 ok") + b"\r\n"
        with server.lock:
            server.reads.append(commands)
        conn.sendall(replies)


def pipelining_open_relay(conn, server):
    recording_open_relay(conn, server, pipelining=True)

def closed_server(conn, server):
    """Refuses every relay RCPT, like any well-configured MX."""
    def answer(cmd):
        if cmd.startswith("EHLO"):
            return "250 closed.fake.example"
        if cmd.startswith("RCPT"):
            return "554 5.7.1 Relay access denied"
        if cmd == "QUIT":
            return "221 bye"
        return "250 ok"
    smtp_dialogue(conn, answer)


def slow_start(pause):
    """A closed MX that takes `pause` seconds over its banner and each of its
    first three replies, then answers at once: a test of it lasts longer than
    one command timeout (if `pause` is over half of it) while no single step does."""
    def behaviour(conn, server):
        time.sleep(pause)
        conn.sendall(b"220 slow.fake.example ESMTP\r\n")
        for count, line in enumerate(lines(conn)):
            cmd = line.upper()
            if count < 3:
                time.sleep(pause)
            if cmd.startswith("EHLO"):
                reply = "250 slow.fake.example"
            elif cmd.startswith("RCPT"):
                reply = "554 5.7.1 Relay access denied"
            elif cmd == "QUIT":
                reply = "221 bye"
            else:
                reply = "250 ok"
            conn.sendall((reply + "\r\n").encode())
            if cmd == "QUIT":
                return
    return behaviour
