"""The egress supervisor must not lend its own privileges.

Under the supervisor every sendmsg is carried out by corral, outside the
sandbox, from a copy of the program's message — control messages included.
The kernel checks a control message's privilege against the *sender*: with
corral running as root, the supervisor has CAP_NET_ADMIN and CAP_NET_RAW
that the confined program was stripped of, so SO_MARK (steer policy routing
and firewall marks), SO_PRIORITY above 6, IPv4 source routes (the datagram
goes to the route's first hop, any host, instead of the checked peer) and
IPv6 hop-by-hop options went out on the program's datagrams. The program
must get the answer the kernel would give it: EPERM. An unprivileged control message (IP_TTL) still works.
(Names in Connect put the supervisor in charge of UDP too; the test-only
hosts file says what they are.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file

PEER4, PEER6 = "127.0.0.2", "::1"


def _run(arena: Path, probe: Path, attack: str, ip: str, port: int, user: str) -> str:
    text = (
        'Name = "redteam-udp"\nExtends = ["base"]\n'
        f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["udp"]\n'
        f'Connect = ["udp:four.test:{port}", "udp:six.test:{port}"]\n'
        f'[Filesystem]\nExec = ["{probe}"]\n'
    )
    policy = policy_file(arena, text, "redteam-udp.toml")
    hosts = policy_file(arena, f"{PEER4} four.test\n{PEER6} six.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probe), attack, ip, str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    words = proc.stdout.split()
    assert words, proc.stderr
    return words[-1]


@pytest.fixture
def sinks() -> "tuple[int, list[socket.socket]]":
    for _ in range(50):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind((PEER4, 0))
        port = a.getsockname()[1]
        b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            b.bind((PEER6, port))
        except OSError:
            a.close()
            b.close()
            continue
        return port, [a, b]
    pytest.skip("no UDP port free on both loopbacks")


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("attack", "ip"), [("mark", PEER4), ("priority", PEER4), ("lsrr", PEER4), ("hopopts", PEER6)])
def test_a_privileged_control_message_is_refused_as_the_kernel_would(arena: Path, probes: dict[str, Path], sinks: "tuple[int, list[socket.socket]]", user: str, attack: str, ip: str) -> None:
    port, _ = sinks
    assert _run(arena, probes["redteam_probe"], attack, ip, port, user) == "errno=EPERM"


@pytest.mark.parametrize("user", USERS)
def test_an_unprivileged_control_message_still_goes_out(arena: Path, probes: dict[str, Path], sinks: "tuple[int, list[socket.socket]]", user: str) -> None:
    port, socks = sinks
    assert _run(arena, probes["redteam_probe"], "ttl", PEER4, port, user) == "ok"
    socks[0].settimeout(5)
    assert socks[0].recv(16) == b"x"
