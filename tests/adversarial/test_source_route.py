"""Source routing: packets to an allowed peer, delivered to another host.

An IPv4 loose source route (IP_OPTIONS on the socket, or an IP_RETOPTS
control message on one send) makes the kernel send the packet to the
route's first hop; the destination the supervisor (or anything else) checked
only rides along in the option. Setting a source route takes net_raw, which
flag ``ping`` brings: under a policy with it that allows one peer and denies
another, a confined program run as root reached the denied one both ways: its
UDP datagram through the supervisor's own sendmsg (which passed the
program's control messages on), its TCP SYN through the sticky option on
the socket the supervisor connected. The test watches the loopback link
itself (a packet socket), since a host that receives a source-routed
packet may drop it after it has arrived: what matters is where it went.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file

ALLOWED = "127.0.0.1"
DENIED = "127.0.0.9"


def _sent_to(sniffer: socket.socket, proto: int, seconds: float = 1.0) -> set[str]:
    """Destination addresses of IPv4 packets of PROTO seen on lo."""
    seen: set[str] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame = sniffer.recv(65536)
        except TimeoutError:
            break
        ip = frame[14:]
        if len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == proto:
            seen.add(socket.inet_ntoa(ip[16:20]))
    return seen


def _policy(arena: Path, probe: Path) -> Path:
    return policy_file(
        arena,
        f'Name = "srcroute"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n'
        f'[Networking]\nFlags = ["outgoing", "ping"]\nProtocols = ["tcp", "udp"]\n'
        f'Connect = ["tcp:{ALLOWED}:*", "udp:{ALLOWED}:*"]\nDeny = ["tcp:{DENIED}:*", "udp:{DENIED}:*"]\n'
        '[Misc]\nSyscalls = ["setsockopt"]\n',
    )


@pytest.mark.parametrize("user", USERS)
def test_an_ordinary_control_message_still_goes_through_the_supervisor(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    as_user(user)
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind((ALLOWED, 0))
    target.settimeout(5)
    try:
        got = confined(_policy(arena, probes["srcroute_probe"]), "srcroute_probe", "udp-ttl", DENIED, ALLOWED, str(target.getsockname()[1]), user=user)
        assert got.answer == "ok", got
        assert target.recv(64) == b"srr-leak"
    finally:
        target.close()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("attack", "proto"), [("udp-cmsg", 17), ("udp-sticky", 17), ("tcp-sticky", 6)])
def test_a_source_route_never_steers_a_packet_to_a_denied_peer(arena: Path, probes: dict[str, Path], confined: Confined, user: str, attack: str, proto: int) -> None:
    as_user(user)
    policy = _policy(arena, probes["srcroute_probe"])
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == 17 else socket.SOCK_STREAM)
    target.bind((ALLOWED, 0))
    if proto == 6:
        target.listen()
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sniffer.bind(("lo", 0))
    sniffer.settimeout(0.3)
    try:
        got = confined(policy, "srcroute_probe", attack, DENIED, ALLOWED, str(target.getsockname()[1]), user=user)
        seen = _sent_to(sniffer, proto)
    finally:
        sniffer.close()
        target.close()
    assert DENIED not in seen, f"{attack}: a packet went to the denied peer {DENIED} ({got.answer}, destinations seen: {sorted(seen)})"
    assert got.answer in ("errno=EPERM", "errno=EACCES"), got
