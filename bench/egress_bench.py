"""What the egress supervisor costs (docs/egress.md).

Run:  .venv/bin/python bench/egress_bench.py [--runs N] [--rounds R] [--connect-only]
      (root: nghttpd on 127.0.0.2)

Measured in one run, each against a baseline from the same run:
  1. connect(2) latency (bench/connect_cost.c, 2000 connects to a loopback
     listener, median and mean of each run, the median of R interleaved
     rounds): bare, under `corral run` without names (Landlock only), under
     a policy with a name (every connect answered by the supervisor: an
     address rule connects directly, a name goes to the TLS relay), and the
     same round trip with a supervisor in C (bench/notify_floor.c: what the
     kernel's notification costs, without Python);
  2. bulk throughput: curl --http2 downloading a 256 MiB file from nghttpd,
     directly and through the relay (SNI and ALPN checked, then splice);
  3. start-up: `corral run POLICY -- /bin/true` with a name (the supervisor
     forks and hands over the listener) against the same without names.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORRAL = [str(ROOT / ".venv/bin/corral"), "run", "-q"]
API = "127.0.0.2"


def listener() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4096)

    def loop() -> None:
        while True:
            conn, _ = s.accept()
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return int(s.getsockname()[1])


def median_ms(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connect-only", action="store_true")
    args = ap.parse_args()
    runs, rounds = args.runs, max(1, args.rounds)
    work = Path(tempfile.mkdtemp(prefix="corral-egress-bench-"))
    work.chmod(0o755)
    env = {**os.environ, "CORRAL_EGRESS_HOSTS": str(work / "hosts")}
    for tool in ("connect_cost", "notify_floor"):
        subprocess.run(["gcc", "-static", "-O2", "-o", str(work / tool), str(ROOT / f"bench/{tool}.c")], check=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(work / "k"), "-out", str(work / "c"), "-days", "1",
                    "-subj", "/CN=api.test", "-addext", "subjectAltName=DNS:api.test"], check=True, capture_output=True)  # fmt: skip
    (work / "hosts").write_text(f"{API} api.test\n")
    with open(work / "big", "wb") as fh:
        fh.truncate(256 << 20)
    port, tls = listener(), 18000 + os.getpid() % 1000
    server = subprocess.Popen([shutil.which("nghttpd") or "/usr/sbin/nghttpd", f"--address={API}", "-d", str(work), str(tls), str(work / "k"), str(work / "c")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    common = f'[Filesystem]\nFlags = ["tls-certs"]\nReadOnly = ["{work}/**"]\nExec = ["{work}/connect_cost", "/usr/bin/curl", "/bin/true", "/usr/bin/true"]\n[Runtime]\nFlags = ["exec"]\n'
    plain = work / "plain.toml"
    plain.write_text('Extends = ["base"]\n' + f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:127.0.0.1:{port}"]\n' + common)
    named = work / "named.toml"
    named.write_text('Extends = ["base"]\n' + f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:127.0.0.1:{port}", "tcp:api.test:{tls}"]\nALPN = ["h2"]\n' + common)
    try:
        print(f"1. connect(2), 2000 per run, microseconds: median (added over bare), mean; median of {rounds} rounds")
        cost = [str(work / "connect_cost")]
        floor = [str(work / "notify_floor"), str(work / "connect_cost")]
        rows = [
            ("bare, blocking", cost + ["127.0.0.1", str(port), "2000"], []),
            ("bare, non-blocking", cost + ["127.0.0.1", str(port), "2000", "nb"], []),
            ("corral run, no names (Landlock)", cost + ["127.0.0.1", str(port), "2000"], [*CORRAL, str(plain)]),
            ("supervisor in C (floor), blocking", floor + ["127.0.0.1", str(port), "2000"], []),
            ("supervisor in C (floor), non-blocking", floor + ["127.0.0.1", str(port), "2000", "nb"], []),
            ("supervisor: address rule, blocking", cost + ["127.0.0.1", str(port), "2000"], [*CORRAL, str(named)]),
            ("supervisor: address rule, non-blocking", cost + ["127.0.0.1", str(port), "2000", "nb"], [*CORRAL, str(named)]),
            ("supervisor: name, to the relay", cost + [API, str(tls), "2000", "nb"], [*CORRAL, str(named)]),
        ]
        medians: dict[str, list[float]] = {what: [] for what, _, _ in rows}
        means: dict[str, list[float]] = {what: [] for what, _, _ in rows}
        for _ in range(rounds):  # interleaved: a burst of load spreads over every row
            for what, cmd, prefix in rows:
                out = subprocess.run([*prefix, *cmd], capture_output=True, text=True, env=env).stdout.split()
                means[what].append(int(out[0]) / 1000 if out else float("nan"))
                medians[what].append(int(out[2]) / 1000 if len(out) > 2 else float("nan"))
        base = statistics.median(medians["bare, blocking"])
        for what, _, _ in rows:
            med, mean = statistics.median(medians[what]), statistics.median(means[what])
            print(f"   {what:42} {med:8.1f} (+{med - base:6.1f})  mean {mean:8.1f}")
        if args.connect_only:
            return
        print("2. curl --http2, 256 MiB over TLS, MB/s")
        curl = ["/usr/bin/curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{speed_download}", "--resolve", f"api.test:{tls}:{API}", f"https://api.test:{tls}/big"]
        direct = float(subprocess.run(curl, capture_output=True, text=True, env=env).stdout or 0) / 1e6
        relayed = float(subprocess.run([*CORRAL, str(named), *curl], capture_output=True, text=True, env=env).stdout or 0) / 1e6
        print(f"   direct {direct:8.1f}   through the relay {relayed:8.1f}   ratio {relayed / direct if direct else float('nan'):.2f}")
        print(f"3. start-up, median of {runs}, ms (plans cached)")
        for policy in (plain, named):
            subprocess.run([*CORRAL, str(policy), "/bin/true"], env=env)
        bare = median_ms(["/bin/true"], runs, env)
        without = median_ms([*CORRAL, str(plain), "/bin/true"], runs, env)
        supervised = median_ms([*CORRAL, str(named), "/bin/true"], runs, env)
        print(f"   bare {bare:.2f}   run without names {without:.2f} (+{without - bare:.2f})   with a name {supervised:.2f} (+{supervised - bare:.2f}, {supervised / without:.2f}x)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
