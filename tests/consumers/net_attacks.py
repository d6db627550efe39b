"""Run as root inside a fresh network namespace with corral's nftables ruleset
loaded: open receivers (as root, unconfined) for several protocols, then fork
a child that becomes the confined uid and tries to reach each of them. Prints
one line per attempt, "NAME sent|error:ERRNO received|nothing", so the test
can assert what left the confined uid. Only loopback is involved; every
delivery on loopback completes inside the sending call, so no waiting.

usage: python3 -I net_attacks.py UID ALLOWED_TCP_PORT DENIED_PORT
"""

from __future__ import annotations

import errno
import os
import socket
import sys

IPPROTO_UDPLITE, IPPROTO_SCTP, IPPROTO_MPTCP = 136, 132, 262


def receivers(allowed: int, denied: int) -> dict[str, socket.socket | None]:
    out: dict[str, socket.socket | None] = {}

    def make(name: str, family: int, kind: int, proto: int, port: int) -> None:
        try:
            s = socket.socket(family, kind, proto)
        except OSError:
            out[name] = None  # the protocol is not in this kernel
            return
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            s.listen(8)
        s.setblocking(False)
        out[name] = s

    make("tcp-allowed", socket.AF_INET, socket.SOCK_STREAM, 0, allowed)
    make("tcp-denied", socket.AF_INET, socket.SOCK_STREAM, 0, denied)
    make("udp-denied", socket.AF_INET, socket.SOCK_DGRAM, 0, denied)
    make("udplite", socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_UDPLITE, denied)
    make("sctp", socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP, denied + 1)
    out["mptcp-allowed"] = out["tcp-allowed"]  # MPTCP falls back to TCP at a plain listener
    out["mptcp-denied"] = out["tcp-denied"]
    make("udplite6", socket.AF_INET6, socket.SOCK_DGRAM, IPPROTO_UDPLITE, denied)
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    icmp.setblocking(False)
    out["icmp-ping"] = icmp
    icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    icmp6.setblocking(False)
    out["icmp6-ping"] = icmp6
    return out


def attack(name: str, allowed: int, denied: int) -> str:
    try:
        if name in ("tcp-allowed", "tcp-denied", "mptcp-allowed", "mptcp-denied", "sctp"):
            proto = IPPROTO_MPTCP if name.startswith("mptcp") else IPPROTO_SCTP if name == "sctp" else 0
            port = allowed if name.endswith("allowed") else denied + 1 if name == "sctp" else denied
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto) as s:
                s.settimeout(5)
                s.connect(("127.0.0.1", port))
        elif name in ("udp-denied", "udplite"):
            proto = IPPROTO_UDPLITE if name == "udplite" else 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, proto) as s:
                s.sendto(b"x", ("127.0.0.1", denied))
        elif name == "udplite6":
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, IPPROTO_UDPLITE) as s:
                s.sendto(b"x", ("::1", denied))
        elif name == "icmp6-ping":
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6) as s:
                s.sendto(b"\x80\x00\x00\x00\x00\x01\x00\x01", ("::1", 0))
        elif name == "icmp-ping":  # an unprivileged ping socket (ping_group_range is opened for it)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) as s:
                s.sendto(b"\x08\x00\x00\x00\x00\x01\x00\x01", ("127.0.0.1", 0))
        return "sent"
    except OSError as e:
        return f"error:{errno.errorcode.get(e.errno or 0, e.errno)}"


def arrived(sock: socket.socket | None) -> str:
    if sock is None:
        return "unsupported"
    try:
        if sock.type == socket.SOCK_STREAM:
            conn, _ = sock.accept()
            conn.close()
        else:
            while True:
                data = sock.recv(2048)
                if sock.proto == socket.IPPROTO_ICMP and data[20:21] != b"\x08":
                    continue  # the kernel's echo reply, not the request
                if sock.proto == socket.IPPROTO_ICMPV6 and data[:1] != b"\x80":
                    continue
                break
        return "received"
    except (BlockingIOError, InterruptedError):
        return "nothing"


def main() -> None:
    uid, allowed, denied = (int(a) for a in sys.argv[1:4])
    with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
        f.write("0 2147483647")
    recv = receivers(allowed, denied)
    names = [n for n in recv if n != "mptcp-denied" or recv[n] is not None]
    for name in names:
        if recv[name] is None:
            print(name, "unsupported", "unsupported")
            continue
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.write(w, attack(name, allowed, denied).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        outcome = os.read(r, 100).decode()
        os.close(r)
        print(name, outcome, arrived(recv[name]), flush=True)


if __name__ == "__main__":
    main()
