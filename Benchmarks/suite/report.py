"""Markdown tables, medians and the description of the machine a run used."""
import os
import platform
import statistics
import subprocess


def median(values):
    return statistics.median(values) if values else float("nan")


def ratio(value, baseline):
    return value / baseline if baseline else float("nan")


def table(header, rows):
    """A Markdown table; numbers are formatted by the caller."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def target(met, text):
    """A target line, marked met or missed; a report, never an assertion."""
    return f"- {'met' if met else '**missed**'}: {text}"


def _first_line(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    postfix = _first_line(["/usr/sbin/postconf", "-d", "-h", "mail_version"])
    libmilter = _first_line(["dpkg-query", "-W", "-f", "${Version}", "libmilter-dev"])
    return (f"{os.cpu_count()} cores ({cpu}), {memory} RAM, Linux {platform.release()}; "
            f"{_first_line(['swift', '--version'])}; Postfix {postfix}; libmilter {libmilter}")
