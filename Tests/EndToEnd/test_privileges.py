"""What relay-milter does as root before it becomes its service user: the
directories it touches then belong to that user, so anything in them may have
been planted by whoever took the user over. A link planted there must never
make root hand over, or overwrite, a file elsewhere."""
import os
import shutil
import subprocess

import pytest

from mailharness.ports import free_port
from mailharness.relaymilter import binary, config_text

SERVICE_USER = "nobody"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the hazard is root's own start")


def victim(workdir):
    """A file only root may touch, standing for /etc/shadow."""
    path = workdir / "shadow"
    path.write_text("root:$y$secret:20000:0:99999:7:::\n")
    os.chmod(path, 0o600)
    return path


def state_directory(workdir):
    """The database's directory, already the service user's (as after a first start)."""
    path = workdir / "state"
    path.mkdir()
    shutil.chown(path, user=SERVICE_USER)
    return path


def start_as_root(workdir, state, pid_file=None):
    config = workdir / "relay-milter.toml"
    service = f'[service]\nuser = "{SERVICE_USER}"\n' + (f'pid_file = "{pid_file}"\n' if pid_file else "")
    config.write_text(service + config_text(local_domains=("mx.example.org",), sections=(
        f'[cache]\npath = "{state}/verdicts.sqlite"\n[metrics]\nlisten = "127.0.0.1:{free_port()}"\n')))
    # A start that wrongly goes ahead keeps running: the timeout fails the test.
    return subprocess.run([binary(), "run", "--config", str(config), "--socket", f"inet:{free_port()}@127.0.0.1"],
                          capture_output=True, text=True, timeout=30)


def assert_untouched(path):
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 0, 0o600)
    assert path.read_text() == "root:$y$secret:20000:0:99999:7:::\n"


@pytest.mark.parametrize("name", ["verdicts.sqlite", "verdicts.sqlite-wal", "verdicts.sqlite-shm"])
def test_a_symbolic_link_planted_for_the_database_is_refused(workdir, name):
    target = victim(workdir)
    state = state_directory(workdir)
    (state / name).symlink_to(target)
    result = start_as_root(workdir, state)
    assert result.returncode == 71, result.stderr
    assert f"refusing to give {state}/{name} to {SERVICE_USER}: it is a symbolic link; remove it" in result.stderr
    assert_untouched(target)


def test_a_hard_link_planted_for_the_database_is_refused(workdir):
    target = victim(workdir)
    state = state_directory(workdir)
    os.link(target, state / "verdicts.sqlite-wal")
    result = start_as_root(workdir, state)
    assert result.returncode == 71, result.stderr
    assert f"refusing to give {state}/verdicts.sqlite-wal to {SERVICE_USER}: it is not a plain file with a single name" in result.stderr
    assert_untouched(target)


def test_the_state_directory_itself_may_not_be_a_link(workdir):
    target = workdir / "etc"
    target.mkdir(mode=0o700)
    state = workdir / "state"
    state.symlink_to(target)
    result = start_as_root(workdir, state)
    assert result.returncode == 71, result.stderr
    assert f"cannot open {state} (a symbolic link is refused)" in result.stderr
    assert target.stat().st_uid == 0


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_a_link_planted_as_the_pid_file_is_neither_followed_nor_truncated(workdir, link):
    target = victim(workdir)
    run_dir = workdir / "run"
    run_dir.mkdir()
    shutil.chown(run_dir, user=SERVICE_USER)
    pid_file = run_dir / "relay-milter.pid"
    link(target, pid_file)
    result = start_as_root(workdir, state_directory(workdir), pid_file=pid_file)
    assert result.returncode == 71, result.stderr
    assert f"cannot write pid file {pid_file}" in result.stderr
    assert_untouched(target)


def test_root_with_no_service_user_is_refused_unless_the_config_says_stay_root(workdir):
    config = workdir / "relay-milter.toml"
    sections = f'[cache]\npath = "{workdir}/verdicts.sqlite"\n[metrics]\nlisten = "127.0.0.1:{free_port()}"\n'
    config.write_text(config_text(local_domains=("mx.example.org",), sections=sections))
    # A start that wrongly goes ahead keeps running: the timeout fails the test.
    result = subprocess.run([binary(), "run", "--config", str(config), "--socket", f"inet:{free_port()}@127.0.0.1"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 78, result.stderr
    assert (f"relay-milter: {config}: service.user: started as root with no user to run as: name one "
            '(user = "relay-milter", the package\'s), or set run_as_root = true to stay root') in result.stderr

    # Said in as many words, it stays root, and says so at start.
    config.write_text(config_text(local_domains=("mx.example.org",),
                                  sections=sections + "[service]\nrun_as_root = true\n"))
    milter = subprocess.Popen([binary(), "run", "--config", str(config), "--socket", f"inet:{free_port()}@127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [milter.stdout.readline()]
        while lines[-1] and "msg=started" not in lines[-1]:
            lines.append(milter.stdout.readline())
        log = "".join(lines)
        assert "msg=started" in lines[-1], log
        assert "config.key=service.run_as_root" in log and "relay-milter stays root" in log, log
    finally:
        milter.terminate()
        milter.wait(timeout=30)
