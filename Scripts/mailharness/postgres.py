"""A private PostgreSQL server (Debian's postgresql package) on a loopback
port: its own data directory, run as the postgres user, stopped and started
at will to play an outage.

initdb is the slow part of a start, so it runs once per process: the first
server's freshly made cluster, with the role and database in it, is kept
stopped as a template, and each server starts from a copy of it (measured
here: 2.0 s of CPU for the first start, 0.7 s for each one after). Every
server still has a cluster of its own."""
import atexit
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .ports import free_port, wait_for_port

USER = "relay_milter"
DATABASE = "relay_milter"
PASSWORD = "fleet-secret"


def config_section(port, instance, password_file=None, poll_interval="1s"):
    """relay-milter's config lines (the end of `[cache]`, then `[cache.postgresql]`)
    for a PostgreSQL server on 127.0.0.1:`port`, or a stand-in for one."""
    password = f'password_file = "{password_file}"\n' if password_file else ""
    return (f'backend = "postgresql"\n[cache.postgresql]\nhost = "127.0.0.1"\nport = {port}\n'
            f'user = "{USER}"\ndatabase = "{DATABASE}"\n{password}tls = "disable"\n'
            f'instance = "{instance}"\npoll_interval = "{poll_interval}"\n')


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is missing: run Scripts/install-deps (Debian's postgresql package)")
    return Path(found[-1]).parent


def as_postgres(*command, **kwargs):
    return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], capture_output=True, text=True,
                          **kwargs)


_template = None  # a stopped cluster with the role and database made, copied by each server


def _template_cluster():
    """Makes the template cluster on first use; returns its data directory."""
    global _template
    if _template is None:
        root = Path(tempfile.mkdtemp(prefix="relay-milter-pg-template-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        server = PostgresServer._initialised(root)
        server.stop()
        _template = server.data
    return _template


class PostgresServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self.password_file = self.root / "password"
        self.tls = None  # (certificate, key) once use_tls() is called

    def use_tls(self, certificate: Path, key: Path):
        """Serves TLS with this certificate and key (from the next start);
        PostgreSQL wants the key the server's own and private."""
        for path in (certificate, key):
            shutil.chown(path, "postgres", "postgres")
        os.chmod(key, 0o600)
        self.tls = (certificate, key)
        return self

    def start(self):
        """Copies the template cluster (role and database made) on first start; starts it."""
        if not self.data.exists():
            self._make_directories()
            # -a keeps the postgres owner and the data directory's 0700.
            result = subprocess.run(["cp", "-a", str(_template_cluster()), str(self.data)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            self._write_password_file()
        self._run()
        return self

    @classmethod
    def _initialised(cls, root):
        """A server on a cluster made by initdb, with relay-milter's role and database; running."""
        server = cls(root)
        server._make_directories()
        result = as_postgres(bindir() / "initdb", "-D", server.data, "-A", "scram-sha-256", "--auth-local=peer",
                             "-U", "postgres", "--no-sync")
        assert result.returncode == 0, result.stdout + result.stderr
        server._run()
        server.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        server.psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        return server

    def _make_directories(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.socket_dir, "postgres", "postgres")

    def _write_password_file(self):
        # Readable by relay-milter alone, as an admin would keep it.
        self.password_file.write_text(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)

    def _run(self):
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.socket_dir} -c fsync=off"
        if self.tls:
            options += f" -c ssl=on -c ssl_cert_file={self.tls[0]} -c ssl_key_file={self.tls[1]}"
        result = as_postgres(
            bindir() / "pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", "30", "-o", options, "start")
        assert result.returncode == 0, result.stdout + result.stderr + self.log()
        wait_for_port(self.port)

    def stop(self):
        if self.data.exists():
            as_postgres(bindir() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def psql(self, sql, database="postgres"):
        """Runs SQL as the superuser over the unix socket; returns its output, unaligned."""
        result = as_postgres("psql", "-h", self.socket_dir, "-p", self.port, "-d", database, "-v", "ON_ERROR_STOP=1",
                             "-At", "-c", sql)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()

    def load(self, dump: Path):
        """Loads a plain pg_dump into relay-milter's database under its role,
        so that the tables are its own, as if it had made them."""
        script = self.root / "load.sql"
        script.write_text(f"SET ROLE {USER};\n" + Path(dump).read_text())
        os.chmod(script, 0o644)
        result = as_postgres("psql", "-h", self.socket_dir, "-p", self.port, "-d", DATABASE, "-v", "ON_ERROR_STOP=1",
                             "-q", "-f", script)
        assert result.returncode == 0, result.stdout + result.stderr

    def query(self, sql):
        """Runs SQL in relay-milter's database."""
        return self.psql(sql, database=DATABASE)

    def config_section(self, instance, poll_interval="1s"):
        """The relay-milter config lines for this server."""
        return config_section(self.port, instance, password_file=self.password_file, poll_interval=poll_interval)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
