"""A private Sendmail on loopback: Debian's sendmail binary unpacked by
Scripts/install-sendmail (the sendmail and postfix packages conflict), with
its own sendmail.cf built from a .mc by m4, its own queue and a non-25 port.
Mail for the local domain goes through Sendmail's `local` mailer to a script
that stores each message in a file; everything else goes to smtp-sink on
loopback through the `relay` mailer (SMART_HOST). No DNS: the host name is
set in a UTS namespace of its own, and lookups read a hosts file.

relay-milter is attached with the shipped Config/sendmail/relay-milter.m4,
only its socket changed, so the tests check what admins install."""
import os
import shutil
import signal
import subprocess
from pathlib import Path

from . import logsocket
from .ports import free_port, wait_for_port, wait_until

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("RELAY_MILTER_SENDMAIL_ROOT", REPO / ".build-sendmail" / "root"))
BINARY = ROOT / "usr/libexec/sendmail/sendmail"
MAKEMAP = ROOT / "usr/libexec/sendmail/makemap"
CF_DIR = ROOT / "usr/share/sendmail/cf"
SHIPPED_FRAGMENT = REPO / "Config/sendmail/relay-milter.m4"
SHIPPED_SOCKET = "S=inet:10025@127.0.0.1"
# The trap's fragment brings its own listener and socket.
TRAP_FRAGMENT = REPO / "Config/sendmail/relay-milter-trap.m4"
TRAP_SOCKET = "S=inet:10026@127.0.0.1"
TRAP_LISTENER = "Port=2526,"

DELIVER = """\
#!/bin/sh
# Sendmail's local mailer for the tests: one file per message and recipient.
umask 022
cat > "$(mktemp "{mail_dir}/$1.XXXXXX")"
"""


def available():
    return BINARY.exists()


class SendmailInstance:
    def __init__(self, root: Path, *, port=None, sink_port, milter=None, relay_networks=("127",),
                 features=(), local_domain="example.test", hostname="mx.example.test", listen="127.0.0.1",
                 tables=None, other_milter=None, other_first=False, sasl_dir=None, trap=False):
        self.root = Path(root)
        # A trap's Sendmail: attached with the shipped trap fragment instead,
        # its listener and promiscuous_relay included.
        self.trap = trap
        self.listen = listen
        self.port = port or free_port(listen)
        self.sink_port = sink_port
        self.milter = milter
        self.relay_networks = relay_networks
        self.features = features  # extra FEATUREs: the misconfigurations relay-milter guards against
        # Sendmail's routing tables, e.g. {"virtusertable": {"info@example.test": "someone@remote.example"}}:
        # each becomes a FEATURE with a hash map of the instance's own, made by makemap.
        self.tables = tables or {}
        # Another milter's socket (inet:port@host), attached before or after
        # relay-milter's lines: Sendmail calls filters in the order defined.
        self.other_milter = other_milter
        self.other_first = other_first
        # A directory with a Cyrus SASL Sendmail.conf (and the sasldb it names):
        # AUTH PLAIN and LOGIN are offered and trusted for relaying.
        self.sasl_dir = sasl_dir
        self.local_domain = local_domain
        self.hostname = hostname
        self.queue_dir = self.root / "queue"
        self.mail_dir = self.root / "mail"
        self.cf = self.root / "sendmail.cf"
        self.pid_file = self.root / "sendmail.pid"
        self.tag = f"sendmail-test-{self.port}"
        self.logs = logsocket.shared()

    @property
    def family(self):
        """DAEMON_OPTIONS' address family for an IPv6 listener (::1)."""
        return "Family=inet6, " if ":" in self.listen else ""

    def milter_fragment(self):
        """The shipped fragment with the test's socket (and, for a trap, its listener)."""
        if self.trap:
            text = TRAP_FRAGMENT.read_text()
            assert TRAP_SOCKET in text and TRAP_LISTENER in text, f"{TRAP_FRAGMENT} no longer has {TRAP_SOCKET}, {TRAP_LISTENER}"
            return text.replace(TRAP_SOCKET, f"S={self.milter}").replace(
                TRAP_LISTENER, f"Port={self.port}, Addr={self.listen}, {self.family}")
        text = SHIPPED_FRAGMENT.read_text()
        assert SHIPPED_SOCKET in text, f"{SHIPPED_FRAGMENT} no longer has {SHIPPED_SOCKET}"
        return text.replace(SHIPPED_SOCKET, f"S={self.milter}")

    def mc(self):
        r = self.root
        lines = [
            "divert(0)dnl",
            "VERSIONID(`relay-milter end-to-end tests')dnl",
            "OSTYPE(`linux')dnl",
            f"define(`confDOMAIN_NAME', `{self.hostname}')dnl",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl",
            f"define(`QUEUE_DIR', `{self.queue_dir}')dnl",
            f"define(`STATUS_FILE', `{r}/statistics')dnl",
            f"define(`confPID_FILE', `{self.pid_file}')dnl",
            f"define(`ALIAS_FILE', `{r}/aliases')dnl",
            f"define(`confSERVICE_SWITCH_FILE', `{r}/service.switch')dnl",
            f"define(`confHOSTS_FILE', `{r}/hosts')dnl",
            "define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl",
            # The work directory sits under /tmp, which is world-writable but sticky.
            "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
            "define(`confTO_IDENT', `0')dnl",
            "define(`confTO_QUEUERETURN', `1h')dnl",
            "define(`confDELIVERY_MODE', `background')dnl",
            "define(`SMART_HOST', `[127.0.0.1]')dnl",
            f"define(`RELAY_MAILER_ARGS', `TCP $h {self.sink_port}')dnl",
            f"define(`ESMTP_MAILER_ARGS', `TCP $h {self.sink_port}')dnl",
            f"define(`LOCAL_MAILER_PATH', `{r}/deliver')dnl",
            "define(`LOCAL_MAILER_ARGS', `deliver $u')dnl",
            # Any user of the local domain exists (w), and the script takes no -f (f).
            "MODIFY_MAILER_FLAGS(`LOCAL', `-wf')dnl",
            "FEATURE(`nocanonify')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
            f"LOCAL_DOMAIN(`{self.local_domain}')dnl",
        ]
        if not self.trap:  # the trap's fragment names its own listener
            # One listener, on loopback: no default MSA on port 587 of every address.
            lines += ["FEATURE(`no_default_msa')dnl",
                      f"DAEMON_OPTIONS(`Port={self.port}, Addr={self.listen}, {self.family}Name=MTA')dnl"]
        # Sendmail's own relay check: like Postfix's mynetworks in the Postfix suite.
        lines += [f"RELAY_DOMAIN(`{network}')dnl" for network in self.relay_networks]
        lines += [f"FEATURE(`{feature}')dnl" for feature in self.features]
        lines += [f"FEATURE(`{table}', `hash -o {r}/{table}')dnl" for table in self.tables]
        if self.sasl_dir:
            lines += ["define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl", "TRUST_AUTH_MECH(`PLAIN LOGIN')dnl"]
        if self.milter:
            ours = [self.milter_fragment()]
            if self.other_milter:
                other = f"INPUT_MAIL_FILTER(`other', `S={self.other_milter}, F=T, T=C:10s;S:30s;R:30s;E:5m')dnl"
                ours = [other] + ours if self.other_first else ours + [other]
            lines += ours
        lines += ["MAILER(`local')dnl", "MAILER(`smtp')dnl"]
        return "\n".join(lines) + "\n"

    def write_config(self):
        for d in (self.queue_dir, self.mail_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.queue_dir, 0o700)
        os.chmod(self.mail_dir, 0o777)  # the local mailer runs as Sendmail's default user
        deliver = self.root / "deliver"
        deliver.write_text(DELIVER.format(mail_dir=self.mail_dir))
        deliver.chmod(0o755)
        (self.root / "service.switch").write_text("hosts files\naliases files\n")
        (self.root / "hosts").write_text(f"127.0.0.1 {self.hostname} localhost\n")
        (self.root / "aliases").write_text("postmaster: root\n")
        (self.root / "sendmail.mc").write_text(self.mc())
        result = subprocess.run(["m4", f"-D_CF_DIR_={CF_DIR}/", str(CF_DIR / "m4/cf.m4"), str(self.root / "sendmail.mc")],
                                capture_output=True, text=True)
        # m4 warns that the relay features make an open relay: that is why they are asked for.
        relaying = list(self.features) + (["promiscuous_relay"] if self.trap else [])
        warnings = [w for w in result.stderr.split("*** WARNING: ")
                    if w.strip() and not any(w.startswith(f"FEATURE(`{f}')") for f in relaying)]
        assert result.returncode == 0 and not warnings, result.stderr
        self.cf.write_text(result.stdout)
        for table, entries in self.tables.items():
            source = "".join(f"{key}\t{value}\n" for key, value in entries.items())
            subprocess.run([str(MAKEMAP), "-C", str(self.cf), "hash", str(self.root / table)],
                           input=source, text=True, check=True)
        self.sendmail("-bi")  # the alias database

    def sendmail(self, *args, check=True):
        """Runs the binary with this instance's config, in a UTS namespace
        whose host name is the instance's (Sendmail would otherwise wait a
        minute trying to qualify the machine's own name). With SASL, in a
        mount namespace too, where the instance's SASL directory is bind-mounted
        on /usr/lib/sasl2: Cyrus SASL reads Sendmail.conf from its fixed search
        path (/etc/sasl2 first, absent here), Sendmail has no setting for it,
        and nothing of the test's may be left in /etc or /usr."""
        command = [str(BINARY), "-C", str(self.cf), "-L", self.tag, *args]
        setup = f'hostname {self.hostname} && exec "$@"'
        namespaces = ["--uts"]
        if self.sasl_dir:
            setup = f'mount --bind "{self.sasl_dir}" /usr/lib/sasl2 && ' + setup
            namespaces += ["--mount", "--propagation", "private"]
        return subprocess.run(["unshare", *namespaces, "sh", "-c", setup, "sh", *command],
                              capture_output=True, text=True, check=check, timeout=60)

    def start(self):
        self.write_config()
        result = self.sendmail("-bd", "-q1s", check=False)
        if result.returncode != 0 or not wait_for_port(self.port, host=self.listen, timeout=30):
            self.stop()  # a daemon that started but never listened must not outlive the test
            raise RuntimeError(f"sendmail did not start: {result.stdout}{result.stderr}\n--- log:\n{self.log()}")
        return self

    def submit_cf(self):
        """A submit.cf for this instance, as Debian's sendmail(1) uses one: the
        message submission program (FEATURE(`msp')) that hands command-line
        mail to the MTA over SMTP on loopback, here the instance's own port."""
        r = self.root
        mc = "\n".join([
            "divert(0)dnl",
            "VERSIONID(`relay-milter end-to-end tests, submission')dnl",
            "OSTYPE(`linux')dnl",
            f"define(`confDOMAIN_NAME', `{self.hostname}')dnl",
            f"define(`MSP_QUEUE_DIR', `{r}/clientmqueue')dnl",
            f"define(`STATUS_FILE', `{r}/sm-client.st')dnl",
            f"define(`confPID_FILE', `{r}/sm-client.pid')dnl",
            f"define(`confHOSTS_FILE', `{r}/hosts')dnl",
            f"define(`confSERVICE_SWITCH_FILE', `{r}/service.switch')dnl",
            # Debian runs it as smmsp, a user of the sendmail-base package, which
            # is not installed here; it must not be root.
            "define(`confRUN_AS_USER', `nobody:nogroup')dnl",
            "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
            "define(`confTO_IDENT', `0')dnl",
            f"define(`RELAY_MAILER_ARGS', `TCP $h {self.port}')dnl",
            f"FEATURE(`msp', `[{self.listen}]')dnl",
        ]) + "\n"
        queue = r / "clientmqueue"
        queue.mkdir(exist_ok=True)
        queue.chmod(0o770)
        shutil.chown(queue, user="nobody", group="nogroup")
        (r / "submit.mc").write_text(mc)
        result = subprocess.run(["m4", f"-D_CF_DIR_={CF_DIR}/", str(CF_DIR / "m4/cf.m4"), str(r / "submit.mc")],
                                capture_output=True, text=True, check=True)
        cf = r / "submit.cf"
        cf.write_text(result.stdout)
        return cf

    def submit(self, *recipients, sender, message):
        """sendmail(1) from the command line, through this instance's submit.cf."""
        command = [str(BINARY), "-C", str(self.submit_cf()), "-L", self.tag, "-f", sender, *recipients]
        return subprocess.run(["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"', "sh", *command],
                              input=message, capture_output=True, text=True, timeout=60)

    def pid(self):
        try:
            return int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, interval=0.05)

    def log(self):
        lines = self.logs.lines_tagged(self.tag)
        if not self.logs.owned and not lines:
            return "(Sendmail logs to the system log here)"
        return "\n".join(lines)

    def queue_ids(self):
        return sorted(p.name[2:] for p in self.queue_dir.glob("qf*"))

    def wait_queue_empty(self, timeout=20):
        return wait_until(lambda: not self.queue_ids(), timeout=timeout)

    def delivered(self):
        """Every message the local mailer stored, as text."""
        return [p.read_text(errors="replace") for p in sorted(self.mail_dir.iterdir())]

    def delivered_to(self, user):
        return [p.read_text(errors="replace") for p in sorted(self.mail_dir.glob(f"{user}.*"))]
