"""The MTA side of the milter protocol (version 6), small enough to read.

It speaks to relay-milter the way Postfix does, but lets a test send what a
plain Postfix can't easily produce: chosen macros ({auth_authen}), missing
macros, an unknown address family, callbacks out of order. Replies are
returned as (code, payload) tuples; nothing is hidden.
"""
import socket
import struct

SMFIF_ADDHDRS = 0x01
SMFIF_SETSYMLIST = 0x100
ALL_ACTIONS = 0x1FF
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NOUNKNOWN = 0x100
SMFIP_RCPT_REJ = 0x800
# Steps whose reply the milter may waive (SMFIP_NR_*): the client then does not wait.
NO_REPLY_FLAGS = {"C": 0x1000, "H": 0x2000, "T": 0x10000}
ALL_STEPS = 0x1FFFFF  # every step the v6 protocol lets an MTA offer to skip

STAGES = {0: "connect", 1: "helo", 2: "mail", 3: "rcpt", 4: "data", 5: "eom", 6: "eoh"}


def _bytes(value):
    """Text is sent as UTF-8; bytes as they are (for non-UTF-8 input)."""
    return value if isinstance(value, bytes) else value.encode()


class MilterClient:
    def __init__(self, address, timeout=10.0):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""
        self.actions = 0
        self.steps = 0
        self.symlists = {}

    def close(self):
        self.sock.close()

    # --- framing ---------------------------------------------------------
    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack("!Ic", len(data) + 1, cmd.encode()) + data)

    def recv(self):
        while True:
            if len(self.buf) >= 5:
                (length,) = struct.unpack("!I", self.buf[:4])
                if len(self.buf) >= 4 + length:
                    cmd = chr(self.buf[4])
                    payload = self.buf[5 : 4 + length]
                    self.buf = self.buf[4 + length :]
                    if cmd == "p":  # progress: keep waiting
                        continue
                    return cmd, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("milter closed the connection")
            self.buf += chunk

    def ask(self, cmd, data=b""):
        """Sends a command and returns the reply, or None where the milter
        negotiated not to reply at that step."""
        self.send(cmd, data)
        if self.steps & NO_REPLY_FLAGS.get(cmd, 0):
            return None
        return self.recv()

    # --- commands ----------------------------------------------------------
    def negotiate(self, actions=ALL_ACTIONS, steps=ALL_STEPS):
        reply, payload = self.ask("O", struct.pack("!III", 6, actions, steps))
        assert reply == "O", f"expected OPTNEG, got {reply!r}"
        _version, self.actions, self.steps = struct.unpack("!III", payload[:12])
        rest = payload[12:]
        while len(rest) >= 4:
            (where,) = struct.unpack("!I", rest[:4])
            names, _, rest = rest[4:].partition(b"\0")
            self.symlists[STAGES.get(where, where)] = names.decode().split()
        return self.actions, self.steps

    def macros(self, stage_cmd, values):
        data = stage_cmd.encode() + b"".join(_bytes(k) + b"\0" + _bytes(v) + b"\0" for k, v in values.items())
        self.send("D", data)

    def connect(self, hostname, address=None, port=25, family=None, macros=None):
        if macros:
            self.macros("C", macros)
        if address is None:
            data = _bytes(hostname) + b"\0" + b"U"
        else:
            fam = family or ("6" if ":" in address else "4")
            data = _bytes(hostname) + b"\0" + fam.encode() + struct.pack("!H", port) + address.encode() + b"\0"
        return self.ask("C", data)

    def helo(self, name):
        return self.ask("H", _bytes(name) + b"\0")

    def mail(self, sender, macros=None):
        if macros:
            self.macros("M", macros)
        return self.ask("M", _bytes(sender) + b"\0")

    def rcpt(self, recipient, macros=None):
        if macros:
            self.macros("R", macros)
        return self.ask("R", _bytes(recipient) + b"\0")

    def data(self):
        return self.ask("T")

    def eom(self):
        """Returns (final reply, [header actions])."""
        self.send("E")
        headers = []
        while True:
            cmd, payload = self.recv()
            if cmd == "h":
                name, value, _ = payload.split(b"\0", 2)
                headers.append((name.decode(), value.decode()))
                continue
            return (cmd, payload), headers

    def abort(self):
        self.send("A")

    def quit(self):
        self.send("Q")


def reply_text(reply):
    """The text of a custom reply ('y'), or '' for a bare code."""
    cmd, payload = reply
    return payload.rstrip(b"\0").decode(errors="replace") if cmd == "y" else ""
