"""Benchmarks/MilterLoad (`milter-load`): the MTA side of the milter
protocol, driving a milter at a socket and reporting as JSON."""
import json
import subprocess
from pathlib import Path


def run(binary: Path, socket: str, seconds: float, warmup: float, sessions: int, recipients: int = 1, seed: int = 1,
        clients: int = 10000, rate: float = 0):
    """One milter-load run; returns its JSON report. `rate` paces it (transactions/s)."""
    result = subprocess.run([str(binary), "--socket", socket, "--duration", str(seconds), "--warmup", str(warmup),
                             "--sessions", str(sessions), "--recipients", str(recipients), "--seed", str(seed),
                             "--clients", str(clients), "--rate", str(rate), "--json"],
                            capture_output=True, text=True, timeout=seconds + warmup + 120)
    if result.returncode != 0:
        raise RuntimeError(f"milter-load against {socket} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout)
