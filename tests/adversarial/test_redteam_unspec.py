"""AF_UNSPEC is not "no address" for an IPv4 UDP send.

The supervisor took a sockaddr whose family is AF_UNSPEC for "no peer"
(true of connect(2), where it dissolves an association) and carried the
send out as asked. But IPv4 UDP's sendmsg accepts AF_UNSPEC as AF_INET for
old programs' sake and sends to the sin_addr/sin_port that follow: a
datagram to any host and port, past a policy that names one UDP peer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file

ALLOWED, FORBIDDEN = "127.0.0.2", "127.0.0.3"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("attack", ["unspec", "unspec-msg"])
def test_an_unspec_address_never_carries_a_datagram_elsewhere(arena: Path, probes: dict[str, Path], user: str, attack: str) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((FORBIDDEN, 0))
    sink.settimeout(0.5)
    port = sink.getsockname()[1]
    text = (
        'Name = "redteam-unspec"\nExtends = ["base"]\n'
        f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["udp"]\nConnect = ["udp:four.test:{port}"]\n'
        f'[Filesystem]\nExec = ["{probes["redteam_probe"]}"]\n'
    )
    policy = policy_file(arena, text, "redteam-unspec.toml")
    hosts = policy_file(arena, f"{ALLOWED} four.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["redteam_probe"]), attack, FORBIDDEN, str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    try:
        got = sink.recv(16)
    except OSError:
        got = b""
    sink.close()
    assert got == b"", f"a datagram reached {FORBIDDEN}:{port} with an AF_UNSPEC address: {proc.stdout}"
    assert proc.stdout.split()[-1:] in (["errno=EPERM"], ["errno=EACCES"], ["errno=EINVAL"]), proc.stdout + proc.stderr
