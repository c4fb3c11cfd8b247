"""The demo behind Scripts/demo: a private Postfix on 127.0.0.1:2525 that
trusts all of 127.0.0.0/8, relay-milter with the shipped config (which trusts
only 127.0.0.1) on inet:10025@127.0.0.1, and smtp-sink on 127.0.0.1:2526
standing in for the rest of the Internet. The shipped config starts in
log-only, as a live MX should; the demo then switches a copy of it to enforce
and reloads, the way an admin finishes the roll-out."""
import argparse
from collections import Counter
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mailharness.ports import wait_for_port, wait_until  # noqa: E402
from mailharness.postfix import PostfixInstance, SmtpSink  # noqa: E402
from mailharness.relaymilter import REPO, binary  # noqa: E402
from mailharness.swaks import swaks  # noqa: E402

CASES = [
    ("local recipient, from an untrusted client", "bob@example.test", "127.0.0.2"),
    ("relay attempt, from an untrusted client", "victim@elsewhere.example", "127.0.0.2"),
    ("percent hack, from an untrusted client", "victim%elsewhere.example@example.test", "127.0.0.2"),
    ("relay, from the trusted network", "friend@elsewhere.example", "127.0.0.1"),
]
SERVICE_USER = "relay-milter"


def ensure_service_user():
    """The shipped config runs as the package's system user: made here as the package's postinst makes it."""
    if subprocess.run(["getent", "passwd", SERVICE_USER], capture_output=True).returncode != 0:
        subprocess.run(["adduser", "--system", "--quiet", "--group", "--home", "/var/lib/relay-milter",
                        "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER], check=True)


def last_reply(transcript):
    replies = [l for l in transcript.splitlines() if l.startswith(("<-", "<**"))]
    rcpt = [l for l in replies if "5.7.1" in l or "4.7.1" in l]
    return (rcpt or replies[-2:-1] or ["?"])[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--once", action="store_true", help="stop after the demo messages")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="relay-milter-demo-"))
    os.chmod(root, 0o755)
    # A copy the service user can read again at reload (the checkout may be in root's home).
    config = root / "relay-milter.toml"
    shutil.copyfile(REPO / "Config" / "relay-milter.toml", config)
    os.chmod(config, 0o644)
    ensure_service_user()
    sink = SmtpSink(root / "sink", port=2526).start()
    milter_log = root / "relay-milter.log"
    milter = subprocess.Popen([binary(), "run", "--config", str(config)],
                              stdout=open(milter_log, "wb"), stderr=subprocess.STDOUT)
    postfix = None
    try:
        if not wait_for_port(10025):
            raise SystemExit("relay-milter did not start:\n" + milter_log.read_text())
        postfix = PostfixInstance(root / "postfix", port=2525, sink_port=sink.port,
                                  milter="inet:127.0.0.1:10025").start()
        print(f"Postfix on 127.0.0.1:2525 (queue and logs in {root}), relay-milter on inet:10025@127.0.0.1\n")

        print('1. The shipped config: mode = "log-only". Mail flows as Postfix alone decides; '
              "relay-milter logs what it would refuse.\n")
        show_round(postfix, sink, milter_log)

        print('\n2. mode = "enforce" in the copy, then SIGHUP (systemctl reload relay-milter does the same):\n')
        offset = len(milter_log.read_text())
        config.write_text(config.read_text().replace('mode = "log-only"', 'mode = "enforce"', 1))
        milter.send_signal(signal.SIGHUP)
        if not wait_until(lambda: "config reloaded" in milter_log.read_text()[offset:], timeout=10):
            raise SystemExit("relay-milter did not reload:\n" + milter_log.read_text()[offset:])
        show_round(postfix, sink, milter_log)
        if args.once:
            return
        print("\nRunning. Try: swaks --server 127.0.0.1:2525 --local-interface 127.0.0.2 --to someone@elsewhere.example")
        print(f"Edit {config} and `kill -HUP {milter.pid}` to reload. Ctrl-C stops.\n")
        with open(milter_log) as log:
            log.seek(0, os.SEEK_END)
            while milter.poll() is None:
                line = log.readline()
                if line:
                    print(line, end="")
                else:
                    time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if postfix:
            postfix.stop()
        milter.send_signal(signal.SIGTERM)
        milter.wait(timeout=20)
        sink.stop()


def show_round(postfix, sink, milter_log):
    """Sends the cases through Postfix and shows the replies, where each message went, and the decisions."""
    offset = len(milter_log.read_text())
    # The sink's files come in no particular order: what a round relayed is
    # what the sink holds now and did not before.
    delivered, relayed = len(postfix.delivered()), Counter(sink.recipients())
    accepted = 0
    for title, rcpt, source in CASES:
        code, out = swaks(postfix.port, to=rcpt, source=source)
        reply = last_reply(out) if code else "250 accepted (queued)"
        accepted += code == 0
        print(f"  {title:45} RCPT TO:<{rcpt}>\n      -> {reply}")
    # Every accepted message ends in the maildir or at the sink; Postfix
    # delivers them side by side, so they are listed sorted, not as they came.
    wait_until(lambda: len(postfix.delivered()) - delivered + len(sink.recipients()) - relayed.total() >= accepted, timeout=30)
    print(f"\n  Delivered to the local maildir: {len(postfix.delivered()) - delivered}; "
          f"relayed to the outside world (smtp-sink): {sorted((Counter(sink.recipients()) - relayed).elements())}")
    print("\n  relay-milter's decisions:")
    for line in milter_log.read_text()[offset:].splitlines():
        if "relay decision" in line:
            print("    " + line)


if __name__ == "__main__":
    main()
