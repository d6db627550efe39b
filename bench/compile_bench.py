"""How long `corral compile` takes, against a bare interpreter start.

Run:  .venv/bin/python bench/compile_bench.py [--runs N]

Measures, in one run and on the same machine:
  baseline   `python -c pass` with the venv's interpreter (process start)
  check      `corral check examples/agent-http2.toml`
  compile    `corral compile examples/agent-http2.toml` (every target)
  apparmor   `corral compile ... -t apparmor --allow-unenforced` (no libseccomp)
and prints median wall times and their ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORRAL = [sys.executable, "-m", "corral.cli"]
POLICY = str(ROOT / "examples/agent-http2.toml")


def median_ms(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as out:
        cases = {
            "baseline (python -c pass)": [sys.executable, "-c", "pass"],
            "corral check": [*CORRAL, "check", POLICY],
            "corral compile (all targets)": [*CORRAL, "compile", POLICY, "-o", out, "--force"],
            "corral compile -t apparmor": [*CORRAL, "compile", POLICY, "-t", "apparmor", "-o", out, "--force", "--allow-unenforced"],
        }
        results = {name: median_ms(cmd, runs) for name, cmd in cases.items()}
    base = results["baseline (python -c pass)"]
    print(f"{'case':30} {'median ms':>10} {'x baseline':>11} {'over baseline ms':>17}   ({runs} runs each)")
    for name, ms in results.items():
        print(f"{name:30} {ms:10.1f} {ms / base:11.2f} {ms - base:17.1f}")


if __name__ == "__main__":
    main()
