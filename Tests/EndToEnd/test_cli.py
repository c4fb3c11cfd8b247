"""The command line as an admin meets it: check-config, decide, and a run
that refuses a bad config."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from mailharness.ports import free_port
from mailharness.relaymilter import REPO, RelayMilter, binary, config_text

SAMPLE = str(REPO / "Config" / "relay-milter.toml")


def run(*args, timeout=30):
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)


def test_check_config_prints_the_effective_config():
    result = run("check-config", "--config", SAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {SAMPLE}: OK\n[milter]\nsocket = \"inet:10025@127.0.0.1\"")
    assert 'local_domains = ["example.test"]' in result.stdout


def test_every_shipped_config_passes_check_config():
    shipped = sorted((REPO / "Config").rglob("*.toml"))
    assert shipped, "no TOML files under Config/"
    for path in shipped:
        result = run("check-config", "--config", str(path))
        assert result.returncode == 0, f"{path}: {result.stderr}"
        assert result.stdout.startswith(f"# {path}: OK\n"), result.stdout[:200]


def test_a_config_writable_by_others_is_refused(workdir):
    config = workdir / "relay-milter.toml"
    config.write_text(config_text())
    os.chmod(config, 0o666)
    for args in (("check-config",), ("run", "--socket", "inet:1@127.0.0.1")):
        result = run(*args, "--config", str(config))
        assert result.returncode == 78, result.stderr
        assert f"{config}: writable by other users (mode 0666); run chmod o-w on it" in result.stderr
    os.chmod(config, 0o664)  # group-writable is the admin's choice
    assert run("check-config", "--config", str(config)).returncode == 0


def test_check_config_names_file_and_line(workdir):
    bad = workdir / "bad.toml"
    bad.write_text('[policy]\nmode = "enforce"\n\ntrusted_networks = ["10.1.2.3/8"]\n')
    result = run("check-config", "--config", str(bad))
    assert result.returncode == 78
    assert result.stderr.strip() == (
        f'relay-milter: {bad}:4: policy.trusted_networks: "10.1.2.3/8" has host bits set after the prefix; '
        'did you mean "10.0.0.0/8"?')


def test_run_refuses_to_start_on_a_bad_config(workdir):
    bad = workdir / "bad.toml"
    bad.write_text('[milter]\nsocket = "inet:10025@127.0.0.1"\nsokcet_mode = "0660"\n')
    result = run("run", "--config", str(bad), "--socket", "inet:1@127.0.0.1")
    assert result.returncode == 78
    assert f"{bad}:3: milter.sokcet_mode: unknown key" in result.stderr


def test_run_reports_a_socket_it_cannot_open(workdir):
    good = workdir / "good.toml"
    good.write_text(config_text(sections="[service]\nrun_as_root = true\n"))
    result = run("run", "--config", str(good), "--socket", "unix:/nonexistent/dir/sock")
    assert result.returncode == 71
    assert "cannot open milter socket unix:/nonexistent/dir/sock" in result.stderr


@pytest.fixture
def enforcing_sample(workdir):
    """The shipped config switched to enforce, as an admin does after log-only (the one change)."""
    path = workdir / "enforcing.toml"
    text = Path(SAMPLE).read_text()
    assert text.count('mode = "log-only"') == 1
    path.write_text(text.replace('mode = "log-only"', 'mode = "enforce"'))
    return str(path)


def test_decide_json_one_object_per_recipient(enforcing_sample):
    result = run("decide", "--config", enforcing_sample, "--client", "203.0.113.5", "--from", "<ceo@example.test>",
                 "--rcpt", "<bob@example.test>", "--rcpt", "<victim@elsewhere.example>",
                 "--rcpt", "<relaytest%nmap.scanme.org@example.test>", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(l["rcpt"], l["action"], l["reason"]) for l in lines] == [
        ("<bob@example.test>", "accept", "relay.local_recipient"),
        ("<victim@elsewhere.example>", "reject", "relay.denied"),
        ("<relaytest%nmap.scanme.org@example.test>", "reject", "relay.routed_address"),
    ]
    assert lines[1]["reply"] == "550 5.7.1 <victim@elsewhere.example>: Relay access denied (relay.denied)"


def test_decide_explains_in_text_and_honours_auth_and_mailer():
    result = run("decide", "--config", SAMPLE, "--client", "203.0.113.5", "--auth", "alice", "--from", "<a@b.example>",
                 "--rcpt", "<x@elsewhere.example>")
    assert "rcpt <x@elsewhere.example>: ACCEPT [relay.authenticated] client authenticated as alice" in result.stdout
    result = run("decide", "--config", SAMPLE, "--client", "203.0.113.5", "--from", "<a@b.example>",
                 "--rcpt", "<bob@example.test>", "--rcpt-mailer", "smtp", "--json")
    assert json.loads(result.stdout)["reason"] == "relay.mta_remote_transport"


def test_decide_refuses_a_bad_client_address():
    result = run("decide", "--config", SAMPLE, "--client", "not-an-ip", "--from", "<>", "--rcpt", "<a@b.example>")
    assert result.returncode != 0
    assert '--client "not-an-ip" is not an IPv4 or IPv6 address' in result.stderr


def test_decide_reads_the_mtas_spellings(enforcing_sample):
    """--client in either MTA's {client_addr} form; --mta sendmail reads the
    recipient macros as Sendmail's, after its virtusertable, as the daemon does."""
    result = run("decide", "--config", SAMPLE, "--client", "IPv6:0:0:0:0:0:0:0:1", "--from", "<>",
                 "--rcpt", "<x@faraway.example>")
    assert result.returncode == 0 and "[relay.trusted_network] client ::1 is in trusted networks" in result.stdout, result
    forward = ("--client", "203.0.113.9", "--from", "<>", "--rcpt", "<info@example.test>",
               "--rcpt-mailer", "esmtp", "--rcpt-addr", "someone@remote.example")
    assert "ACCEPT [relay.local_recipient]" in run("decide", "--config", SAMPLE, *forward, "--mta", "sendmail").stdout
    assert "REJECT [relay.denied]" in run("decide", "--config", enforcing_sample, *forward).stdout
    refused = run("decide", "--config", SAMPLE, *forward, "--mta", "exim")
    assert refused.returncode != 0 and "--mta must be postfix or sendmail" in refused.stderr


def test_a_duration_too_long_is_an_error_not_a_crash(workdir):
    # Both once died of an arithmetic overflow trap (exit 132).
    config = workdir / "relay-milter.toml"
    config.write_text(config_text(sections=f'[cache]\npath = "{workdir}/verdicts.sqlite"\n'))
    result = run("cache", "set", "192.0.2.7", "open", "--ttl", "200000000000000d", "--config", str(config))
    assert result.returncode == 1, result.stderr
    assert 'ttl: "200000000000000d" is longer than 3650d, the longest duration relay-milter takes' in result.stderr
    assert run("cache", "set", "192.0.2.7", "open", "--ttl", "3650d", "--config", str(config)).returncode == 0

    bad = workdir / "bad.toml"
    bad.write_text('[cache.ttl]\nopen = "200000000000000d"\n')
    for args in (("check-config",), ("run", "--socket", "inet:1@127.0.0.1")):
        result = run(*args, "--config", str(bad))
        assert result.returncode == 78, result.stderr
        assert f'{bad}:2: cache.ttl.open: "200000000000000d" is longer than 3650d' in result.stderr


def listeners(port):
    """The local addresses listening on TCP `port`, as ss(8) shows them."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def test_a_milter_socket_is_on_loopback_unless_the_config_says_otherwise(workdir):
    port = free_port()
    # No host: loopback, where libmilter alone would take every address.
    milter = RelayMilter(workdir / "hostless", config_text(local_domains=("mx.example.org",)), socket=f"inet:{port}").start()
    try:
        assert listeners(port) == [f"127.0.0.1:{port}"]
    finally:
        milter.stop()

    result = run("run", "--config", str(milter.config_path), "--socket", f"inet:{port}@0.0.0.0")
    assert result.returncode == 78, result.stderr
    assert (f'relay-milter: --socket: "inet:{port}@0.0.0.0" listens beyond loopback, and the milter protocol has '
            "no authentication") in result.stderr

    remote = RelayMilter(workdir / "remote", config_text(local_domains=("mx.example.org",),
                                                         sections="[milter]\nallow_remote_mta = true\n"),
                         socket=f"inet:{port}@0.0.0.0").start()
    try:
        assert listeners(port) == [f"0.0.0.0:{port}"]
        assert remote.logged("level=warning", 'config.key=milter.socket', "listens beyond loopback (allow_remote_mta = true)")
    finally:
        remote.stop()


def test_check_config_warns_and_strict_fails_on_warnings(workdir):
    config = workdir / "relay-milter.toml"
    config.write_text(config_text(trusted=("127.0.0.1/32", "0.0.0.0/0")))
    result = run("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f'relay-milter: warning: {config}: policy.trusted_networks: "0.0.0.0/0" trusts every client: any host on the '
        "Internet may relay through this MTA as far as relay-milter is concerned, which then refuses nothing",
        f'relay-milter: warning: {config}: policy.local_domains: still holds the shipped config\'s placeholder "example.test": list the '
        "domains this MTA receives mail for"]
    strict = run("check-config", "--strict", "--config", str(config))
    assert strict.returncode == 78 and strict.stderr == result.stderr and strict.stdout == ""
    config.write_text(config_text(local_domains=("mx.example.org",)))
    assert run("check-config", "--strict", "--config", str(config)).returncode == 0
