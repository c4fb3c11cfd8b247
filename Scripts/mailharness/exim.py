"""A private Exim on loopback, in the configuration Debian generates for an
Internet site ("mail is sent and received directly using SMTP"), with every
other debconf answer at its default. Exim comes unpacked from Debian's
packages (Scripts/install-probe-targets): it conflicts with Postfix."""
import os
import shutil
import subprocess
from pathlib import Path

from .isolation import start_isolated
from .ports import free_port, wait_for_port, wait_until
from .unpacked import ROOT

BINARY = ROOT / "usr/sbin/exim4"


def available():
    return BINARY.exists()


class EximInstance:
    def __init__(self, root: Path, *, port=None, relay_nets="", hostname="mx.example.test"):
        self.root = Path(root)
        self.port = port or free_port()
        # debconf's dc_relay_nets: empty by default (only the host itself relays).
        self.relay_nets = relay_nets
        self.hostname = hostname
        self.proc = None

    def generate_config(self):
        """exim4.conf as Debian's update-exim4.conf makes it from the packaged
        template, with two paths of the script pointed at the instance: the
        mail name it reads from /etc/mailname, and no chown to Debian-exim's
        group of a file that is the instance's own."""
        conf_dir = self.root / "conf"
        shutil.copytree(ROOT / "etc/exim4", conf_dir)
        (conf_dir / "update-exim4.conf.conf").write_text(
            "dc_eximconfig_configtype='internet'\n"
            f"dc_other_hostnames='{self.hostname}'\n"
            "dc_local_interfaces='127.0.0.1 ; ::1'\n"
            "dc_readhost=''\ndc_relay_domains=''\ndc_minimaldns='false'\n"
            f"dc_relay_nets='{self.relay_nets}'\n"
            "dc_smarthost=''\nCFILEMODE='644'\ndc_use_split_config='false'\n"
            "dc_hide_mailname=''\ndc_mailname_in_oh='true'\ndc_localdelivery='mail_spool'\n")
        (self.root / "mailname").write_text(self.hostname + "\n")
        script = (ROOT / "usr/sbin/update-exim4.conf").read_text()
        script = script.replace("/etc/mailname", str(self.root / "mailname"))
        script = script.replace("chown root:Debian-exim", ": chown root:Debian-exim")
        (self.root / "update-exim4.conf").write_text(script)
        generated = self.root / "exim4.conf.generated"
        subprocess.run(["bash", str(self.root / "update-exim4.conf"), "-d", str(conf_dir), "-o", str(generated)],
                       check=True, capture_output=True, text=True, env={**os.environ, "PATH": f"{ROOT}/usr/sbin:{os.environ['PATH']}"})
        # Where the instance keeps what Debian keeps in /etc/exim4, /var/spool/exim4, /var/log/exim4.
        paths = (f"CONFDIR = {conf_dir}\nSPOOLDIR = {self.root / 'spool'}\n"
                 f"log_file_path = {self.root / 'log'}/%slog\n")
        self.config = self.root / "exim4.conf"
        self.config.write_text(paths + generated.read_text())

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.generate_config()
        for d in ("spool", "log"):
            (self.root / d).mkdir()
            shutil.chown(self.root / d, user="Debian-exim", group="Debian-exim")
        # -bdf: the listening daemon, in the foreground; -oX: this port on 127.0.0.1 only.
        self.proc = start_isolated([BINARY, "-C", self.config, "-bdf", "-oX", f"127.0.0.1:{self.port}"],
                                   root=self.root, hostname=self.hostname, log=self.root / "stderr")
        if not wait_for_port(self.port, timeout=20):
            self.stop()
            raise RuntimeError(f"exim did not start:\n{self.log()}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def log(self):
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("log/*")) if p.is_file()) + \
            ((self.root / "stderr").read_text(errors="replace") if (self.root / "stderr").exists() else "")
