"""Write a mixed audit log from real event shapes, for the learn benchmark.

    python bench/make_audit_log.py OUT [--lines N]

Shapes (kernel/syslog, auditd, journald short; AppArmor file, exec, mmap,
network, capability, status; seccomp) follow the lines the kernel, auditd
and the Docker AppArmor tutorial in shared/seeds show; about one line in
five is ordinary syslog noise. Paths, pids and timestamps vary as in a
real log, so events repeat but lines rarely do.
"""

from __future__ import annotations

import argparse
import random

FILE_OPS = [("open", "r"), ("open", "w"), ("getattr", "r"), ("file_mmap", "rm"), ("mkdir", "c"), ("unlink", "d"), ("exec", "x")]
PATHS = [f"/usr/lib/x86_64-linux-gnu/lib{n}.so.{v}" for n in ("c", "ssl", "crypto", "z", "m", "pthread", "ffi", "yaml") for v in range(3)] + [
    f"/srv/app/{d}/{f}" for d in ("static", "views", "lib") for f in ("index.js", "app.css", "logo.png", "util.js", "main.html")
] + ["/etc/ld.so.cache", "/etc/hosts", "/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt", "/proc/sys/vm/overcommit_memory", "/var/log/app/app.log", "/usr/local/bin/node"]
NOISE = ["systemd[1]: Started Session 4 of user root.", "CRON[2212]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)", "sshd[991]: Accepted publickey for root from 10.0.0.2 port 50122 ssh2", "dhclient[712]: DHCPACK of 10.0.0.5 from 10.0.0.1"]


def event(rng: random.Random, serial: int) -> str:
    ts = f"{1700000000 + serial // 50}.{serial % 1000:03d}:{serial}"
    pid = rng.randint(100, 65000)
    kind = rng.random()
    verdict = rng.choice(("ALLOWED", "DENIED", "AUDIT"))
    profile = rng.choice(("docker-nodejs", "agent-http2", "nginx"))
    if kind < 0.7:
        op, mask = rng.choice(FILE_OPS)
        body = f'apparmor="{verdict}" operation="{op}" profile="{profile}" name="{rng.choice(PATHS)}" pid={pid} comm="node" requested_mask="{mask}" denied_mask="{mask}" fsuid=0 ouid=0'
    elif kind < 0.8:
        body = f'apparmor="{verdict}" operation="accept" profile="{profile}" pid={pid} comm="node" lport={rng.choice((8000, 8080, 443))} family="inet6" sock_type="stream" protocol=6 requested_mask="accept" denied_mask="accept"'
    elif kind < 0.85:
        cap = rng.choice(((13, "net_raw"), (12, "net_admin"), (21, "sys_admin")))
        body = f'apparmor="{verdict}" operation="capable" profile="{profile}" pid={pid} comm="ping" capability={cap[0]}  capname="{cap[1]}"'
    else:
        nr = rng.choice((54, 41, 42, 101, 165, 272))
        return f"type=SECCOMP msg=audit({ts}): auid=0 uid=0 gid=0 ses=1 subj=unconfined pid={pid} comm=\"curl\" exe=\"/usr/bin/curl\" sig=0 arch=c000003e syscall={nr} compat=0 ip=0x7f3c2a1b{rng.randint(0, 65535):04x} code=0x7ffc0000"
    form = rng.random()
    if form < 0.4:
        return f"Nov 22 10:{serial // 6000 % 60:02d}:{serial // 100 % 60:02d} host kernel: [{serial / 100:12.6f}] audit: type=1400 audit({ts}): {body}"
    if form < 0.8:
        return f"type=AVC msg=audit({ts}): {body}"
    return f"Nov 22 10:{serial // 6000 % 60:02d}:{serial // 100 % 60:02d} host kernel: audit: type=1400 audit({ts}): {body}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = random.Random(20261122)
    with open(args.out, "w") as fh:
        for serial in range(args.lines):
            if rng.random() < 0.2:
                fh.write(f"Nov 22 10:00:00 host {rng.choice(NOISE)}\n")
            else:
                fh.write(event(rng, serial) + "\n")


if __name__ == "__main__":
    main()
