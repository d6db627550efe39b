"""The egress supervisor keeps a name's addresses for the records' TTL,
bounded to 5..300 s (sandbox/egress/dnsttl.py), asked of the DNS resolver
libc uses; getaddrinfo (which says no TTL) still gives the addresses.

A real DNS server (a small one on a loopback address of this test's own)
answers in a private mount namespace whose /etc/resolv.conf names it, and
libc's own res_query asks it. As root (mount namespaces)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from corral.sandbox.egress.dnsttl import answer_ttl

TTLS = {"seven.test": 7, "short.test": 1, "long.test": 86400}


def _response(query: bytes) -> bytes:
    """An answer to one query: an A record 192.0.2.7 with the name's TTL, NXDOMAIN for unknown names."""
    pos, labels = 12, []
    while query[pos]:
        labels.append(query[pos + 1 : pos + 1 + query[pos]].decode())
        pos += 1 + query[pos]
    question = query[12 : pos + 5]
    qtype = struct.unpack("!H", query[pos + 1 : pos + 3])[0]
    ttl = TTLS.get(".".join(labels).lower())
    if ttl is None:
        return query[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
    if qtype != 1:
        return query[:2] + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + question
    answer = struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + socket.inet_aton("192.0.2.7")
    return query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer


def test_the_smallest_ttl_of_an_answer_is_read() -> None:
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05seven\x04test\x00\x00\x01\x00\x01"
    assert answer_ttl(_response(query)) == 7
    assert answer_ttl(_response(query.replace(b"\x05seven", b"\x05nope!"))) is None
    assert answer_ttl(b"\x00" * 5) is None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="a private /etc/resolv.conf needs root and unshare")
def test_the_supervisor_keeps_addresses_for_their_ttl_bounded(tmp_path: Path) -> None:
    server_ip = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((server_ip, 53))

    def serve() -> None:
        while True:
            try:
                query, peer = udp.recvfrom(4096)
                udp.sendto(_response(query), peer)
            except (OSError, IndexError):
                return

    threading.Thread(target=serve, daemon=True).start()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {server_ip}\noptions timeout:2 attempts:1\n")
    check = (
        "import time\n"
        "from corral.sandbox.egress.dnsttl import record_ttl\n"
        "from corral.sandbox.egress.rules import Resolver\n"
        "print([record_ttl(n) for n in ('seven.test', 'short.test', 'long.test', 'unknown.test')])\n"
        "r = Resolver()\n"
        "print(sorted(map(str, r.lookup('seven.test'))))\n"
        "for _ in range(100):\n"
        "    if r.cache['seven.test'][0] - r.looked['seven.test'] != 30.0: break\n"
        "    time.sleep(0.05)\n"
        "print(r.cache['seven.test'][0] - r.looked['seven.test'])\n"
    )
    script = f'mount --bind {resolv} /etc/resolv.conf && exec "$@"'
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-I", "-c", check], capture_output=True, text=True, timeout=60)
    finally:
        udp.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[7.0, 5.0, 300.0, None]", "['192.0.2.7']", "7.0"], proc.stdout + proc.stderr
