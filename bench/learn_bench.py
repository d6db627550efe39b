"""`corral learn` throughput and memory, against AppArmor's own log parser.

Run:  .venv/bin/python bench/learn_bench.py [--lines N]

In one run, on the same generated log (bench/make_audit_log.py, 1M lines):
  corral   `corral learn LOG` end to end: read, parse, and write a policy;
  apparmor `apparmor.logparser.ReadLog(...).read_log('')` from Debian's
           python3-apparmor, under the system interpreter (it only parses).
Wall time, lines/s and peak RSS (ru_maxrss of each child) for both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APPARMOR = """
import sys
from apparmor.logparser import ReadLog
from apparmor.profile_list import ProfileList
ReadLog(sys.argv[1], ProfileList(), '/etc/apparmor.d').read_log('')
"""


def measure(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.log"
        subprocess.run([sys.executable, str(ROOT / "bench/make_audit_log.py"), str(log), "--lines", str(args.lines)], check=True)
        size = log.stat().st_size
        corral = measure([str(ROOT / ".venv/bin/corral"), "learn", str(log)])
        apparmor = measure(["/usr/bin/python3", "-c", APPARMOR, str(log)])
    print(f"log: {args.lines:,} lines, {size / 1e6:.0f} MB")
    print(f"{'reader':40} {'seconds':>8} {'lines/s':>12} {'peak RSS MB':>12}")
    for name, (secs, rss) in (("corral learn (parse + policy)", corral), ("apparmor.logparser (parse only)", apparmor)):
        print(f"{name:40} {secs:8.2f} {args.lines / secs:12,.0f} {rss / 1024:12.1f}")
    print(f"corral is {apparmor[0] / corral[0]:.1f}x faster, using {corral[1] / apparmor[1]:.2f}x the memory")


if __name__ == "__main__":
    main()
