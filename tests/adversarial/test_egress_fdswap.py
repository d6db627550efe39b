"""The egress supervisor against the fd-table race.

A supervisor that looks at the socket behind a descriptor number (TCP
without Fast Open, or not an IP socket) and then answers CONTINUE lets the
kernel look the number up again: a second thread can swap a UDP socket onto
that number in between, and the kernel sends the datagram to whatever
address the call names — past the supervisor, and past Landlock, which does
not mediate UDP. The forbidden peer must never receive a byte.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from .harness import USERS, arrivals, policy_file
from .test_egress import API, OTHER, Servers, servers  # noqa: F401 - the module's fixture

ROUNDS = "3000"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("call", ["sendto", "sendmsg"])
def test_swapping_a_udp_socket_under_a_checked_descriptor_reaches_nobody(servers: Servers, probes: dict[str, Path], user: str, call: str) -> None:  # noqa: F811
    shutil.copy(probes["fdswap_probe"], servers.root / "fdswap_probe")
    (servers.root / "fdswap_probe").chmod(0o755)
    text = servers.policy(name="fdswap").read_text().replace(f'"{servers.root}/egress_probe"', f'"{servers.root}/fdswap_probe"')
    policy = policy_file(servers.root, text, "fdswap.toml")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((OTHER, 0))
    sink.settimeout(0.5)
    port = sink.getsockname()[1]
    proc = servers.run(policy, str(servers.root / "fdswap_probe"), call, OTHER, str(port), ROUNDS, user=user)
    received = 0
    try:
        while True:
            sink.recv(16)
            received += 1
    except OSError:
        pass
    sink.close()
    assert proc.stdout.split()[-1:] == ["ok"], proc.stdout + proc.stderr
    assert received == 0, f"{received} datagrams reached {OTHER}:{port} past the supervisor"


@pytest.mark.parametrize("user", USERS)
def test_swapping_a_tcp_socket_under_a_unix_one_never_connects_elsewhere(servers: Servers, probes: dict[str, Path], user: str) -> None:  # noqa: F811
    """connect() on a unix socket is none of the supervisor's business, or
    so it seems: let it through and a TCP socket swapped onto the number
    connects to any host on a port Landlock allows."""
    shutil.copy(probes["fdswap_probe"], servers.root / "fdswap_probe")
    (servers.root / "fdswap_probe").chmod(0o755)
    forbidden = socket.socket()
    forbidden.bind((OTHER, 0))
    forbidden.listen(512)
    forbidden.settimeout(0.5)
    port = forbidden.getsockname()[1]
    text = servers.policy(name="fdswap-connect").read_text()
    text = text.replace(f'"{servers.root}/egress_probe"', f'"{servers.root}/fdswap_probe"').replace(f"tcp:api.test:{servers.port}", f"tcp:api.test:{port}")
    text = text.replace('Flags = ["outgoing"]', 'Flags = ["outgoing", "unix"]')
    policy = policy_file(servers.root, text, "fdswap-connect.toml")
    proc = servers.run(policy, str(servers.root / "fdswap_probe"), "connect", OTHER, str(port), ROUNDS, user=user)
    reached = arrivals(forbidden)
    assert proc.stdout.split()[-1:] == ["ok"], proc.stdout + proc.stderr
    assert reached == 0, f"{reached} connections reached {OTHER}:{port} past the supervisor"
