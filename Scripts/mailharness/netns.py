"""A network namespace of the test's own, joined to the test host by a veth
pair that carries documentation-prefix IPv6 addresses (2001:db8::/32):
hosts with global IPv6 addresses that no packet ever leaves. Needs root."""
import secrets
import subprocess


def ip(*args, netns=None):
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run(prefix + ["ip", *args], check=True, capture_output=True, text=True)


class IPv6Link:
    """`host_address` on this side, `peer_address` inside namespace `name`."""

    def __init__(self, prefix="2001:db8:25::"):
        tag = secrets.token_hex(3)
        self.name = f"rm-{tag}"
        self.host_if, self.peer_if = f"rmh{tag}", f"rmp{tag}"
        self.host_address, self.peer_address = f"{prefix}1", f"{prefix}2"
        self.prefix = f"{prefix}/64"

    def start(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
            ip("link", "set", self.peer_if, "netns", self.name)
            # nodad: usable at once, not after duplicate address detection's second or two.
            ip("addr", "add", f"{self.host_address}/64", "dev", self.host_if, "nodad")
            ip("link", "set", self.host_if, "up")
            ip("addr", "add", f"{self.peer_address}/64", "dev", self.peer_if, "nodad", netns=self.name)
            ip("link", "set", self.peer_if, "up", netns=self.name)
            ip("link", "set", "lo", "up", netns=self.name)
        except subprocess.CalledProcessError as error:
            self.stop()
            raise RuntimeError(f"{error.cmd}: {error.stderr}") from error
        return self

    def run(self, command, **kwargs):
        """Runs `command` inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name, *command], **kwargs)

    def stop(self):
        # Deleting the namespace deletes its end of the pair, and with it ours.
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
