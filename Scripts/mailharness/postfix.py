"""A private Postfix instance on loopback: its own config, queue and log
directories, no chroot, a non-25 port. Mail for the local domain lands in a
maildir; everything else goes to smtp-sink on loopback (no DNS)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

from .ports import free_port, wait_for_port, wait_until

MASTER_CF = """\
{listener}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

SMTPD_LISTENER = "{address} inet  n       -       n       -       -       smtpd"
# Debian's master.cf layout with postscreen in front: it holds the port and
# hands each client that passes its tests to smtpd (socket and all).
POSTSCREEN_LISTENER = """\
{address} inet  n       -       n       -       1       postscreen
smtpd     pass  -       -       n       -       -       smtpd
dnsblog   unix  -       -       n       -       0       dnsblog
tlsproxy  unix  -       -       n       -       0       tlsproxy"""


class SmtpSink:
    """Postfix's smtp-sink on loopback, dumping each transaction to a file of its own."""

    def __init__(self, root: Path, port=None):
        self.root = Path(root)
        self.port = port or free_port()
        self.dump_dir = self.root / "received"
        self.proc = None

    def start(self):
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        shutil.chown(self.dump_dir, user="postfix")  # smtp-sink drops to the postfix user
        self.proc = subprocess.Popen(
            ["smtp-sink", "-u", "postfix", "-d", f"{self.dump_dir}/msg.", "-c", f"127.0.0.1:{self.port}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port):
            raise RuntimeError("smtp-sink did not start")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def messages(self):
        """Each received transaction: envelope (X-Rcpt-Args: ...) and message, as text."""
        return [p.read_text(errors="replace") for p in sorted(self.dump_dir.iterdir())]

    def text(self):
        return "".join(self.messages())

    def recipients(self):
        """Every RCPT TO the sink accepted, in order."""
        return [line.split(":", 1)[1].split()[0] for line in self.text().splitlines() if line.startswith("X-Rcpt-Args:")]


class PostfixInstance:
    def __init__(self, root: Path, *, port=None, sink_port, milter=None, mynetworks="127.0.0.0/8",
                 local_domain="example.test", hostname="mx.example.test", listen="127.0.0.1", extra=None,
                 resolv_conf=None, relaxed_limits=True, master_extra="", postscreen=False, netns=None,
                 relay_restrictions="permit_mynetworks, reject_unauth_destination"):
        self.root = Path(root)
        # A resolv.conf of the test's own (a loopback DNS server): Postfix then
        # runs in a mount namespace where it is /etc/resolv.conf, so its DNS
        # lookups (reject_rbl_client) stay on loopback and the system's file is untouched.
        self.resolv_conf = resolv_conf
        self.listen = listen
        self.port = port or free_port(listen)
        self.sink_port = sink_port
        self.milter = milter
        self.mynetworks = mynetworks
        self.local_domain = local_domain
        self.hostname = hostname
        self.extra = extra or {}
        # Most suites make many refused attempts on one connection and relax
        # Postfix's error limits and sleeps for it; the conformance suite runs
        # Postfix at its defaults (relaxed_limits=False).
        self.relaxed_limits = relaxed_limits
        # Most suites want a relay refused for good (550/554); None keeps
        # Postfix's own default, which defers it (454 4.7.1 Relay access denied).
        self.relay_restrictions = relay_restrictions
        # More master.cf services (a submission port, ...).
        self.master_extra = master_extra
        self.postscreen = postscreen
        # A network namespace (`ip netns` name) to run the whole instance in.
        self.netns = netns
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.mail_dir = self.root / "mail"
        self.maillog = self.root / "maillog"

    @property
    def ipv6(self):
        return ":" in self.listen

    @property
    def service_address(self):
        """The smtpd service's address as master.cf writes it: [::1]:port for IPv6."""
        return f"[{self.listen}]:{self.port}" if self.ipv6 else f"{self.listen}:{self.port}"

    def main_cf(self):
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.root,
            "myhostname": self.hostname,
            "mydomain": self.local_domain,
            "myorigin": "$myhostname",
            "mydestination": "$myhostname, localhost",
            # Postfix checks inet_interfaces against configured interfaces (127.0.0.3 is
            # not one); the service line in master.cf binds its own address anyway.
            # IPv6 only where the instance listens on it: the system may have none.
            "inet_interfaces": "127.0.0.1, [::1]" if self.ipv6 else "127.0.0.1",
            "inet_protocols": "all" if self.ipv6 else "ipv4",
            "mynetworks": self.mynetworks,
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "smtp_dns_support_level": "disabled",
            # No reverse lookups of loopback clients: they would leave loopback
            # for the system resolver, and stall a session when it times out.
            "smtpd_peername_lookup": "no",
            "smtp_host_lookup": "native",
            "virtual_mailbox_domains": self.local_domain,
            "virtual_mailbox_base": self.mail_dir,
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "virtual_minimum_uid": "100",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        if self.relay_restrictions is not None:
            settings["smtpd_relay_restrictions"] = self.relay_restrictions
        if self.relaxed_limits:
            settings.update({
                "smtpd_error_sleep_time": "0",
                "smtpd_soft_error_limit": "1000",
                "smtpd_hard_error_limit": "1000",
                "smtpd_client_connection_rate_limit": "0",
                "anvil_rate_time_unit": "60s",
            })
        if self.milter:
            settings.update({
                "smtpd_milters": self.milter,
                "milter_default_action": "tempfail",
                "milter_protocol": "6",
                "milter_connect_macros": "j {daemon_name} {daemon_addr} v {client_addr}",
            })
        settings.update(self.extra)
        return "".join(f"{k} = {v}\n" for k, v in settings.items())

    def write_config(self):
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.mail_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        (self.config_dir / "main.cf").write_text(self.main_cf())
        listener = (POSTSCREEN_LISTENER if self.postscreen else SMTPD_LISTENER).format(address=self.service_address)
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(listener=listener) + self.master_extra)
        # Postfix reads a main.cf changed within the last second or so again
        # and again, 300 ms apart, until it has cooled down (it might be half
        # written: dict_load_file_xt in Postfix's util/dict.c). Ours is whole, so
        # it is dated in the past: a start took 2.2 s with the naps, 0.7 s without.
        cooled = time.time() - 10
        for name in ("main.cf", "master.cf"):
            os.utime(self.config_dir / name, (cooled, cooled))
        shutil.chown(self.data_dir, user="postfix")
        shutil.chown(self.mail_dir, user=65534, group=65534)
        self.maillog.touch()

    def postfix(self, *args, check=True):
        return subprocess.run(["postfix", "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, check=check)

    def start(self):
        self.write_config()
        if self.resolv_conf:
            result = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                 'mount --bind "$1" /etc/resolv.conf && exec postfix -c "$2" start', "sh",
                 str(self.resolv_conf), str(self.config_dir)], capture_output=True, text=True)
        elif self.netns:
            result = subprocess.run(["ip", "netns", "exec", self.netns, "postfix", "-c", str(self.config_dir), "start"],
                                    capture_output=True, text=True)
        else:
            result = self.postfix("start", check=False)
        if result.returncode != 0 or not wait_for_port(self.port, host=self.listen, timeout=30):
            raise RuntimeError(f"postfix did not start: {result.stdout}{result.stderr}\n--- maillog:\n{self.log()}")
        self.assert_no_fatal()
        return self

    def reload(self):
        self.write_config()
        self.postfix("reload")

    def stop(self):
        pid_file = self.queue_dir / "pid" / "master.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        self.postfix("stop", check=False)
        # master exits asynchronously (and leaves its pid file behind).
        if pid:
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, interval=0.05)

    def log(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def assert_no_fatal(self):
        fatal = [line for line in self.log().splitlines() if "fatal:" in line or "panic:" in line]
        assert not fatal, "postfix reported:\n" + "\n".join(fatal)

    def queue_ids(self):
        """Queue ids of messages still in the queue (postqueue -j prints one JSON per message)."""
        out = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"], capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line.strip()]

    def wait_queue_empty(self, timeout=20):
        return wait_until(lambda: not self.queue_ids(), timeout=timeout)

    def delivered(self):
        """Messages delivered to the local maildir, as text."""
        new = self.mail_dir / "inbox" / "new"
        if not new.exists():
            return []
        return [p.read_text(errors="replace") for p in sorted(new.iterdir())]
