"""The Debian package, as an admin meets it (issue 9): built by
Scripts/package, checked by lintian, installed with dpkg on this machine,
run the way its systemd unit runs it, attached to the system Postfix
(/etc/postfix, on a loopback port) with the lines `postfix-snippet`
prints, then removed and purged. This changes the machine (a package, a
system user, /etc/postfix for the test's duration): it is meant for CI and
throwaway machines, and restores /etc/postfix afterwards."""
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from mailharness.ports import free_port, wait_for_port, wait_until
from mailharness.relaymilter import REPO
from mailharness.swaks import swaks

EXPECTED_LINTIAN = REPO / "Scripts/debian/lintian-expected"
UNIT = "/lib/systemd/system/relay-milter.service"
TEMPLATE_UNIT = "/lib/systemd/system/relay-milter@.service"


def run(*args, check=True, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kwargs)


@pytest.fixture(scope="module")
def deb():
    if os.geteuid() != 0:
        pytest.fail("the package test installs a package: run it as root (CI does)")
    # --quick: the same files at a lower xz level (packing at the default took 39 of this fixture's 64 s here).
    result = run(str(REPO / "Scripts/package"), "--quick", check=False, cwd=REPO, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = Path(result.stdout.strip().splitlines()[-1])
    yield REPO / path
    run("dpkg", "--purge", "relay-milter", check=False)


def expected_lintian_tags():
    """Each warning we accept, with the reason in the file beside it."""
    tags = {}
    for line in EXPECTED_LINTIAN.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            tag, reason = line.split(":", 1)
            assert reason.strip(), f"{line!r}: say why this warning is accepted"
            tags[tag.strip()] = reason.strip()
    return tags


def test_lintian_finds_no_error_and_only_explained_warnings(deb):
    result = run("lintian", "--no-tag-display-limit", str(deb), check=False)
    lines = [l for l in result.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    errors = [l for l in lines if l.startswith("E: ")]
    assert not errors, "\n".join(lines)
    found = {l.split(": ", 2)[2].split()[0] for l in lines if l.startswith("W: ")}
    unexplained = found - set(expected_lintian_tags())
    assert not unexplained, "\n".join(lines)


@pytest.fixture(scope="module")
def packaged_binary(deb, tmp_path_factory):
    """relay-milter as the .deb ships it, unpacked (not installed)."""
    root = tmp_path_factory.mktemp("unpacked")
    run("dpkg-deb", "-x", str(deb), str(root))
    return root / "usr/sbin/relay-milter"


def test_the_runtime_needs_only_what_the_package_depends_on(deb, packaged_binary):
    libraries = run("ldd", str(packaged_binary)).stdout
    assert "libswiftCore" not in libraries and "libFoundation" not in libraries, libraries
    names = {line.split()[0] for line in libraries.splitlines() if "=>" in line}
    allowed = re.compile(r"^(libmilter|libsqlite3|libstdc\+\+|libgcc_s|libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so")
    assert all(allowed.match(name) for name in names), names
    depends = run("dpkg-deb", "-f", str(deb), "Depends").stdout
    for package in ("libmilter1.0.1", "libsqlite3-0", "libstdc++6", "libgcc-s1", "libc6", "adduser"):
        assert package in depends, depends


def test_the_packaged_binary_keeps_libmilters_signal_thread_parked(packaged_binary):
    """The shim's sigwait (CShim/CMilterShim/signals.c) reaches libmilter only
    if the stripped static-stdlib build still exports it to the dynamic linker."""
    exported = run("nm", "-D", "--defined-only", str(packaged_binary)).stdout
    assert re.search(r"^[0-9a-f]+ T sigwait$", exported, re.M), exported[-2000:]


class SystemPostfix:
    """The system Postfix (/etc/postfix), set up from the snippet on a loopback
    port for the test, and put back as it was afterwards."""

    def __init__(self, snippet_settings, root: Path):
        self.port = free_port()
        self.settings = snippet_settings
        self.root = root
        self.mail_dir = root / "mail"
        self.saved = {}

    def __enter__(self):
        for name in ("main.cf", "master.cf"):
            path = Path("/etc/postfix") / name
            self.saved[name] = path.read_bytes() if path.exists() else None
        self.mail_dir.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        shutil.chown(self.mail_dir, user=65534, group=65534)
        settings = {
            "compatibility_level": "3.6", "myhostname": "mx.example.org", "mydestination": "localhost",
            "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4", "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "alias_maps": "", "alias_database": "", "smtpd_peername_lookup": "no",
            "relayhost": "[127.0.0.1]:9", "smtp_dns_support_level": "disabled",
            "virtual_mailbox_domains": "example.org", "virtual_mailbox_base": str(self.mail_dir),
            "virtual_mailbox_maps": "static:inbox/", "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534", "virtual_minimum_uid": "100",
            "maillog_file": str(self.root / "maillog"), "maillog_file_prefixes": str(self.root),
            **self.settings,
        }
        Path("/etc/postfix/main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        master = self.saved["master.cf"].decode()
        # The public smtpd moves to a loopback port (Debian runs it chrooted: kept).
        master, count = re.subn(r"(?m)^smtp(\s+inet\s)", f"127.0.0.1:{self.port}\\1", master)
        assert count == 1, "no smtp inet line in /etc/postfix/master.cf"
        Path("/etc/postfix/master.cf").write_text(master)
        result = run("postfix", "start", check=False)
        assert result.returncode == 0 and wait_for_port(self.port), result.stderr + self.log()
        return self

    def log(self):
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def delivered(self):
        new = self.mail_dir / "inbox" / "new"
        return list(new.iterdir()) if new.exists() else []

    def __exit__(self, *exc):
        run("postfix", "stop", check=False)
        for name, content in self.saved.items():
            path = Path("/etc/postfix") / name
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


def unit_setting(unit, name):
    """Every value of `name=` in the unit, its words joined ("" for none)."""
    return " ".join(re.findall(rf"(?m)^{name}=(.*)$", unit))


def start_as_the_unit_does(unit, log):
    """The daemon with the unit's user, arguments, umask and file-system view.
    No systemd runs here as PID 1, so ProtectSystem=strict is applied as it
    would be: the whole tree read-only in a private mount namespace but for
    ReadWritePaths (a "-" path only where it exists). /dev, /proc and /sys stay
    as they are, as under the unit. setpriv execs the daemon itself (nothing in
    between to forward signals)."""
    assert unit_setting(unit, "ProtectSystem") == "strict"
    user = unit_setting(unit, "User")
    writable = []
    for entry in unit_setting(unit, "ReadWritePaths").split():
        path = entry.removeprefix("-")
        if Path(path).exists():
            writable.append(path)
        else:
            assert entry.startswith("-") or path.startswith("/run/"), f"ReadWritePaths={entry} does not exist"
    binds = "".join(f"mount --bind {path} {path} && " for path in writable)
    sandbox = (f"{binds}mount -o remount,bind,ro / && umask {unit_setting(unit, 'UMask')} && "
               f'exec setpriv --reuid={user} --regid={user} --init-groups -- "$@"')
    return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", sandbox, "sh",
                             *unit_setting(unit, "ExecStart").split()], stdout=log, stderr=subprocess.STDOUT)


def stop(daemon, log_path):
    daemon.terminate()
    assert daemon.wait(timeout=30) == 0, log_path.read_text()


def mode_owner(path):
    info = os.stat(path)
    return stat.S_IMODE(info.st_mode), pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name


def test_install_run_as_the_unit_does_attach_postfix_remove_purge(deb, workdir):
    tmp_path = workdir  # reachable by Postfix's unprivileged delivery agent, unlike pytest's 0700 tmp_path
    run("dpkg", "--purge", "relay-milter", check=False)
    result = run("dpkg", "-i", str(deb), check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    # What the package set up.
    assert pwd.getpwnam("relay-milter").pw_shell == "/usr/sbin/nologin"
    assert grp.getgrnam("relay-milter")
    assert mode_owner("/etc/relay-milter/relay-milter.toml") == (0o640, "root", "relay-milter")
    assert mode_owner("/var/lib/relay-milter") == (0o750, "relay-milter", "relay-milter")
    assert mode_owner("/usr/sbin/relay-milter") == (0o755, "root", "root")
    checked = run("runuser", "-u", "relay-milter", "--", "/usr/sbin/relay-milter", "check-config",
                  "--config", "/etc/relay-milter/relay-milter.toml", check=False)
    assert checked.returncode == 0 and "OK" in checked.stdout, checked.stderr
    verify = run("systemd-analyze", "verify", UNIT, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    man = run("sh", "-c", "zcat /usr/share/man/man8/relay-milter.8.gz").stdout
    assert ".Dt RELAY-MILTER 8" in man, man[:300]  # mdoc, section 8
    assert "SIGNALS" in man and "postfix-snippet" in man
    # Where the logs are, how it is used, and not relay-milter's own child command.
    assert "journalctl -u relay-milter" in man and "EXAMPLES" in man and "check-config --strict" in man
    assert "parse-config" not in man
    for completion in ("/usr/share/bash-completion/completions/relay-milter",
                       "/usr/share/zsh/vendor-completions/_relay-milter",
                       "/usr/share/fish/vendor_completions.d/relay-milter.fish"):
        assert "postfix-snippet" in Path(completion).read_text(), completion
    assert run("bash", "-n", "/usr/share/bash-completion/completions/relay-milter", check=False).returncode == 0

    # As installed: log-only, and check-config --strict names the placeholder until it is edited.
    strict = run("/usr/sbin/relay-milter", "check-config", "--strict", check=False)
    assert strict.returncode == 78 and "policy.local_domains: still holds the shipped config's placeholder" in strict.stderr, \
        strict.stdout[-500:] + strict.stderr
    unit = Path(UNIT).read_text()
    log_path = tmp_path / "relay-milter.log"
    log = open(log_path, "wb")
    daemon = start_as_the_unit_does(unit, log)
    try:
        assert wait_for_port(10025), log_path.read_text()
        snippet = run("/usr/sbin/relay-milter", "postfix-snippet").stdout
        settings = dict(l.split(" = ", 1) for l in snippet.splitlines() if l and not l.startswith("#"))
        with SystemPostfix(settings, tmp_path / "postfix") as postfix:
            # Nothing is refused, and nothing queued either (the session ends after RCPT).
            code, out = swaks(postfix.port, to="victim@elsewhere.example", source="127.0.0.2",
                              extra=("--quit-after", "RCPT"))
            assert code == 0 and "<-  250 2.1.5 Ok" in out, out + postfix.log()[-2000:]
            assert wait_until(lambda: "decision.would=reject" in log_path.read_text()), log_path.read_text()
    finally:
        stop(daemon, log_path)

    # The admin's edit, as the config and README say: their domain, enforce,
    # and the unix socket that Debian's chrooted smtpd reaches, in the
    # directory the package made (again by dpkg-reconfigure, as README says
    # for a Postfix installed later).
    shutil.rmtree("/var/spool/postfix/relay-milter")
    reconfigured = run("dpkg-reconfigure", "-fnoninteractive", "relay-milter", check=False)
    assert reconfigured.returncode == 0, reconfigured.stdout + reconfigured.stderr
    assert mode_owner("/var/spool/postfix/relay-milter") == (0o2750, "relay-milter", "postfix")
    config = Path("/etc/relay-milter/relay-milter.toml")
    text = config.read_text()
    for old, new in (('socket = "inet:10025@127.0.0.1"', 'socket = "unix:/var/spool/postfix/relay-milter/relay-milter.sock"'),
                     ('mode = "log-only"', 'mode = "enforce"'),
                     ('local_domains = ["example.test"]', 'local_domains = ["example.org"]')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config.write_text(text)
    strict = run("/usr/sbin/relay-milter", "check-config", "--strict", check=False)
    assert strict.returncode == 0, strict.stderr
    daemon = start_as_the_unit_does(unit, log)
    try:
        socket = Path("/var/spool/postfix/relay-milter/relay-milter.sock")
        assert wait_until(socket.exists), log_path.read_text()
        snippet = run("/usr/sbin/relay-milter", "postfix-snippet").stdout
        settings = dict(l.split(" = ", 1) for l in snippet.splitlines() if l and not l.startswith("#"))
        assert settings["smtpd_milters"] == "unix:relay-milter/relay-milter.sock", snippet
        with SystemPostfix(settings, tmp_path / "postfix-unix") as postfix:
            code, out = swaks(postfix.port, to="victim@elsewhere.example", source="127.0.0.2")
            assert "<** 550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)" in out, \
                out + postfix.log()[-2000:] + log_path.read_text()[-2000:]
            code, out = swaks(postfix.port, to="bob@example.org", source="127.0.0.2")
            assert code == 0, out + postfix.log()[-2000:]
            assert wait_until(lambda: len(postfix.delivered()) == 1, timeout=20), postfix.log()[-2000:]
    finally:
        stop(daemon, log_path)
    assert not socket.exists(), "the socket outlived the daemon"
    assert Path("/var/lib/relay-milter/verdicts.sqlite").exists()

    # A trap as README says: the config copied to trap.toml with its own
    # socket and metrics port and [trap] enabled, run by relay-milter@trap
    # beside the main unit, on the same database.
    template = Path(TEMPLATE_UNIT).read_text()
    verify = run("systemd-analyze", "verify", "relay-milter@trap.service", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    trap_config = Path("/etc/relay-milter/trap.toml")
    text = config.read_text()
    for old, new in (('\nsocket = "unix:/var/spool/postfix/relay-milter/relay-milter.sock"',
                      '\nsocket = "unix:/var/spool/postfix/relay-milter/trap.sock"'),
                     ('listen = "127.0.0.1:9469"', 'listen = "127.0.0.1:9470"'),
                     ("enabled = false\n# The MTA's {daemon_name}", "enabled = true\n# The MTA's {daemon_name}")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    trap_config.write_text(text)
    shutil.chown(trap_config, "root", "relay-milter")
    trap_config.chmod(0o640)
    daemon = start_as_the_unit_does(unit, log)
    trap_log_path = tmp_path / "relay-milter-trap.log"
    trap = start_as_the_unit_does(template.replace("%i", "trap"), open(trap_log_path, "wb"))
    try:
        trap_socket = Path("/var/spool/postfix/relay-milter/trap.sock")
        assert wait_until(trap_socket.exists) and wait_until(socket.exists), trap_log_path.read_text() + log_path.read_text()
        assert mode_owner(trap_socket)[1:] == ("relay-milter", "postfix"), mode_owner(trap_socket)
        listed = run("/usr/sbin/relay-milter", "trap", "list", "--config", str(trap_config), check=False)
        assert listed.returncode == 0 and "0 attempt(s)" in listed.stdout, listed.stdout + listed.stderr
    finally:
        stop(trap, trap_log_path)
        stop(daemon, log_path)
    trap_config.unlink()  # the admin's own file: purge leaves such files alone

    # Remove keeps the config and the data; purge deletes them; the user stays.
    assert run("dpkg", "--remove", "relay-milter", check=False).returncode == 0
    assert not Path("/usr/sbin/relay-milter").exists()
    assert Path("/etc/relay-milter/relay-milter.toml").exists()
    assert Path("/var/lib/relay-milter/verdicts.sqlite").exists()
    assert run("dpkg", "--purge", "relay-milter", check=False).returncode == 0
    assert not Path("/etc/relay-milter").exists()
    assert not Path("/var/lib/relay-milter").exists()
    assert not Path("/var/spool/postfix/relay-milter").exists()
    assert pwd.getpwnam("relay-milter")
    status = run("dpkg-query", "-W", "-f=${Status}", "relay-milter", check=False)
    assert "installed" not in status.stdout or status.returncode != 0
