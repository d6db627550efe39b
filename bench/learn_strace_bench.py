"""`corral learn` on strace output against the audit-log path, same run.

Run:  .venv/bin/python bench/learn_strace_bench.py [--lines N]

Three logs of N lines each (default 1,000,000), each read by `corral learn
LOG` end to end (read, parse, write a policy to /dev/null):
  audit    bench/make_audit_log.py's mixed audit log (the baseline);
  strace=  N identical strace lines (issue 14: 10M took 152 s and 2.0 GB,
           growing with every line);
  strace~  a trace that varies: 64 processes, 500 files, reads, opens,
           mmaps and stats, so lines repeat as in a real trace but not all.
Wall time, lines/s and peak RSS (ru_maxrss of each child); the strace
times as ratios of the audit time measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from learn_bench import measure  # bench/ is this script's directory: run as a script

ROOT = Path(__file__).resolve().parent.parent
SAME = '4242 openat(AT_FDCWD</srv/app>, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3</etc/hosts>\n'


def varied(n: int, out: Path) -> None:
    rng = random.Random(20261129)
    files = [f"/srv/app/{d}/f{i}.dat" for d in ("a", "b", "c", "d", "e") for i in range(100)]
    with open(out, "w") as fh:
        for _ in range(n):
            pid = 1000 + rng.randrange(64)
            path = rng.choice(files)
            kind = rng.random()
            if kind < 0.4:
                fh.write(f'{pid} read(3<{path}>, "\\x7fELF"..., 4096) = 4096\n')
            elif kind < 0.7:
                fh.write(f'{pid} openat(AT_FDCWD</srv/app>, "{path}", O_RDONLY|O_CLOEXEC) = 3<{path}>\n')
            elif kind < 0.85:
                fh.write(f"{pid} mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f{rng.randrange(1 << 20):05x}000\n")
            else:
                fh.write(f'{pid} newfstatat(AT_FDCWD</srv/app>, "{path}", {{st_mode=S_IFREG|0644, st_size=1}}, 0) = 0\n')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    corral = str(ROOT / ".venv/bin/corral")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        logs = {name: Path(tmp) / name for name in ("audit", "strace=", "strace~")}
        subprocess.run([sys.executable, str(ROOT / "bench/make_audit_log.py"), str(logs["audit"]), "--lines", str(args.lines)], check=True)
        logs["strace="].write_text(SAME * args.lines)
        varied(args.lines, logs["strace~"])
        for name, log in logs.items():
            results[name] = measure([corral, "learn", str(log)])
    print(f"{args.lines:,} lines each")
    print(f"{'log':10} {'seconds':>8} {'lines/s':>12} {'peak RSS MB':>12} {'x audit':>8}")
    base = results["audit"][0]
    for name, (secs, rss) in results.items():
        print(f"{name:10} {secs:8.2f} {args.lines / secs:12,.0f} {rss / 1024:12.1f} {secs / base:8.2f}")


if __name__ == "__main__":
    main()
