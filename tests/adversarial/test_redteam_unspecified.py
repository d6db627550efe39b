"""The unspecified address is this host.

The kernel connects a TCP socket (and sends a datagram) whose destination
is 0.0.0.0 to this host, over loopback — and :: to ::1 (or 127.0.0.1 on a
v4-mapped socket). The egress supervisor compared the address as written:
``Deny = ["tcp:127.0.0.0/8:*"]`` did not cover 0.0.0.0, nor
::ffff:0.0.0.0, so a program reached a local service the policy denies.
An unspecified destination is decided as the loopback address it reaches.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, arrivals, as_user, policy_file


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("target", ["0.0.0.0", "::ffff:0.0.0.0", "::", "127.0.0.1", "::1"])
def test_a_denied_loopback_is_not_reached_through_the_unspecified_address(arena: Path, probes: dict[str, Path], user: str, target: str) -> None:
    family = socket.AF_INET6 if target in ("::", "::1") else socket.AF_INET
    local = socket.socket(family)
    local.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    local.listen(8)
    local.settimeout(0.2)
    port = local.getsockname()[1]
    text = (
        'Name = "redteam-unspecified"\nExtends = ["base"]\n'
        '[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n'
        'Connect = ["tcp:*", "tcp:api.test:443"]\nDeny = ["tcp:127.0.0.0/8:*", "tcp:[::1]:*"]\n'
        f'[Filesystem]\nExec = ["{probes["redteam_probe"]}"]\n'
    )
    policy = policy_file(arena, text, "redteam-unspecified.toml")
    hosts = policy_file(arena, "192.0.2.7 api.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["redteam_probe"]), "connect", target, str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    reached = arrivals(local)
    assert reached == 0, f"{target}:{port} reached a denied loopback service: {proc.stdout}{proc.stderr}"
    assert proc.stdout.split()[-1:] == ["errno=EACCES"], proc.stdout + proc.stderr
