"""One IPv4 address, three spellings: a.b.c.d, ::ffff:a.b.c.d, 64:ff9b::a.b.c.d.

An AF_INET6 socket connected to ::ffff:127.0.0.1 reaches 127.0.0.1 (the
kernel sends IPv4), and a NAT64 gateway turns 64:ff9b::a.b.c.d into
a.b.c.d. A Deny written in one spelling must cover the others: ``Deny =
["tcp:[::ffff:127.0.0.1]:*"]`` was an IPv6 network that the plain IPv4 peer
127.0.0.1 was never compared with, so the program reached the service the
policy denies. Addresses are compared in one canonical form everywhere
(corral.addresses): decisions, nftables, systemd.
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
@pytest.mark.parametrize(
    ("deny", "target"),
    [
        ("[::ffff:127.0.0.1]", "127.0.0.1"),  # the mapped spelling in Deny, the plain peer
        ("[::ffff:127.0.0.0/104]", "127.0.0.1"),  # a mapped network
        ("127.0.0.1", "::ffff:127.0.0.1"),  # the plain spelling in Deny, a mapped peer through AF_INET6
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ],
)
def test_a_deny_covers_every_spelling_of_its_address(arena: Path, probes: dict[str, Path], user: str, deny: str, target: str) -> None:
    local = socket.socket(socket.AF_INET)
    local.bind(("127.0.0.1", 0))
    local.listen(8)
    local.settimeout(0.2)
    port = local.getsockname()[1]
    text = (
        'Name = "mapped"\nExtends = ["base"]\n'
        '[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n'
        f'Connect = ["tcp:*", "tcp:api.test:443"]\nDeny = ["tcp:{deny}:*"]\n'
        f'[Filesystem]\nExec = ["{probes["redteam_probe"]}"]\n'
    )
    policy = policy_file(arena, text, "mapped.toml")
    hosts = policy_file(arena, "192.0.2.7 api.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["redteam_probe"]), "connect", target, str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    reached = arrivals(local)
    assert reached == 0, f"{target}:{port} reached a service denied as {deny}: {proc.stdout}{proc.stderr}"
    assert proc.stdout.split()[-1:] == ["errno=EACCES"], proc.stdout + proc.stderr
