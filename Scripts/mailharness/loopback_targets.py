"""The loopback addresses of benchmark section 4's SMTP targets, which
Benchmarks/LoopbackTargets/loopback-targets.c serves (one listening socket per
address 127.1.X.Y, all on one port), and the open-file limit such a process
needs."""
import resource


def raise_open_file_limit(listeners):
    """Room for a listening socket and a few connections per target address."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * listeners + 100
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except ValueError:
        # Not allowed to raise the hard limit (a container): as far as it goes.
        # Only the connections of one round of tests are open at a time.
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, hard)), hard))


def address(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"
