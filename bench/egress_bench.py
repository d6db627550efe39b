"""What the egress supervisor costs (docs/egress.md).

Run:  .venv/bin/python bench/egress_bench.py [--runs N]   (root: nghttpd on 127.0.0.2)

Measured in one run, each against a baseline from the same run:
  1. connect(2) latency (bench/connect_cost.c, 2000 connects to a loopback
     listener): bare, under `corral run` without names (Landlock only), and
     under a policy with a name (every connect answered by the supervisor:
     an address rule connects directly, a name goes to the TLS relay);
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
    runs = ap.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="corral-egress-bench-"))
    work.chmod(0o755)
    env = {**os.environ, "CORRAL_EGRESS_HOSTS": str(work / "hosts")}
    subprocess.run(["gcc", "-static", "-O2", "-o", str(work / "connect_cost"), str(ROOT / "bench/connect_cost.c")], check=True)
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
        print("1. connect(2), mean of 2000, microseconds (added over bare in brackets)")
        cost = [str(work / "connect_cost")]
        rows = [
            ("bare, blocking", cost + ["127.0.0.1", str(port), "2000"], []),
            ("corral run, no names (Landlock)", cost + ["127.0.0.1", str(port), "2000"], [*CORRAL, str(plain)]),
            ("supervisor: address rule, blocking", cost + ["127.0.0.1", str(port), "2000"], [*CORRAL, str(named)]),
            ("supervisor: address rule, non-blocking", cost + ["127.0.0.1", str(port), "2000", "nb"], [*CORRAL, str(named)]),
            ("supervisor: name, to the relay", cost + [API, str(tls), "2000", "nb"], [*CORRAL, str(named)]),
        ]
        base = 0.0
        for what, cmd, prefix in rows:
            out = subprocess.run([*prefix, *cmd], capture_output=True, text=True, env=env).stdout.split()
            us = int(out[0]) / 1000 if out else float("nan")
            base = base or us
            print(f"   {what:42} {us:9.1f}  (+{us - base:.1f})")
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
