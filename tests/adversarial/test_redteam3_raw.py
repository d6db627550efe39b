"""Flag ``ping``: ICMP echo, or any IP packet?

The flag says "send ICMP echo requests (ping) with a raw socket" and brings
raw sockets and net_raw. It brought raw sockets of *every* protocol and
IP_HDRINCL with them: under a policy whose network is one TCP port, a
program run as root sent UDP to any host and port — on a raw UDP socket, or
on an ICMP one whose IP header it writes itself (any protocol, any source
address). Landlock does not see raw sockets; seccomp must keep them to ICMP
and the kernel's own IP header.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file

PEER = "127.0.0.7"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("proto", "hdrincl"), [(17, 0), (1, 1), (255, 2), (58, 0)], ids=["raw-udp", "icmp-hdrincl", "ipproto-raw", "icmpv6-on-inet"])
def test_ping_sends_icmp_and_nothing_else(arena: Path, probes: dict[str, Path], confined: Confined, user: str, proto: int, hdrincl: int) -> None:
    as_user(user)
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "ping"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n[Networking]\nFlags = ["outgoing", "ping"]\nProtocols = ["tcp"]\nConnect = ["tcp:443"]\n')
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((PEER, 0))
    sink.settimeout(2)
    try:
        got = confined(policy, "redteam3_probe", "rawudp", "4", str(proto), str(hdrincl), PEER, str(sink.getsockname()[1]), user=user)
        try:
            arrived = sink.recv(64)
        except OSError:
            arrived = b""
    finally:
        sink.close()
    assert arrived == b"" and got.answer in ("errno=EPERM", "errno=EACCES"), f"a UDP datagram left a raw socket under flag ping ({got.answer}, arrived {arrived!r})"


@pytest.mark.parametrize("user", USERS)
def test_ping_still_opens_its_icmp_socket(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """The raw ICMP socket itself, as ping(8) opens it as root: allowed
    (nobody has no net_raw to lend it)."""
    as_user(user)
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "ping"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n[Networking]\nFlags = ["outgoing", "ping"]\nProtocols = ["tcp"]\nConnect = ["tcp:443"]\n')
    got = confined(policy, "redteam3_probe", "rawudp", "4", "1", "0", PEER, "9", user=user)
    assert got.answer == ("ok" if user == "root" else "errno=EPERM"), got


@pytest.mark.parametrize("user", USERS)
def test_ping_does_not_lend_another_hosts_address(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """net_raw also sets IP_TRANSPARENT, after which a UDP datagram goes
    out from any source address the program names (IP_PKTINFO): another
    host's, which the receiver then believes."""
    as_user(user)
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "ping-udp"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n[Networking]\nFlags = ["outgoing", "ping"]\nProtocols = ["udp"]\n')
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((PEER, 0))
    sink.settimeout(2)
    try:
        got = confined(policy, "redteam3_probe", "spoof", "192.0.2.99", PEER, str(sink.getsockname()[1]), user=user)
        try:
            arrived = sink.recvfrom(64)
        except OSError:
            arrived = None
    finally:
        sink.close()
    assert arrived is None and got.answer == "errno=EPERM", f"a datagram from another host's address left the sandbox ({got.answer}, arrived {arrived!r})"
