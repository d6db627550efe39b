"""io_uring under the egress supervisor, allowed through Args.

An io_uring CONNECT request is made by the kernel: no connect(2) reaches
the seccomp filter, so the supervisor never sees it. corral run refuses a
supervised policy that allows io_uring — but it only looked at calls
allowed outright. A user flag allowing io_uring_setup and io_uring_enter
under any argument condition (here: "rings of fewer than 4096 entries")
slipped past, and the program connected to a peer the policy does not name,
as root and as nobody. Any allowance of an io_uring call, conditional or
not, must be refused.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, arrivals, as_user, policy_file

ALLOWED, FORBIDDEN = "127.0.0.2", "127.0.0.3"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("conditional", [("io_uring_setup", "io_uring_enter"), ("io_uring_setup",)])
def test_io_uring_allowed_by_args_never_connects_past_the_supervisor(arena: Path, probes: dict[str, Path], user: str, conditional: tuple[str, ...]) -> None:
    forbidden = socket.socket()
    forbidden.bind((FORBIDDEN, 0))
    forbidden.listen(8)
    forbidden.settimeout(0.2)
    port = forbidden.getsockname()[1]
    args = "".join(f'{call} = [[{{ arg = {1 if call == "io_uring_enter" else 0}, op = "lt", value = 4096 }}]]\n' for call in conditional)
    outright = "" if "io_uring_enter" in conditional else 'Syscalls = ["io_uring_enter"]\n'
    text = (
        'Name = "redteam-uring"\nExtends = ["base"]\n'
        f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:api.test:{port}"]\n'
        f'[Misc]\nFlags = ["small-rings"]\n{outright}'
        f'[Filesystem]\nExec = ["{probes["redteam_probe"]}"]\n'
        '[[Flag]]\nName = "small-rings"\nDescription = "io_uring with small rings"\n'
        f"[Flag.Args]\n{args}"
    )
    policy = policy_file(arena, text, "redteam-uring.toml")
    hosts = policy_file(arena, f"{ALLOWED} api.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["redteam_probe"]), "uring", FORBIDDEN, str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    reached = arrivals(forbidden)
    assert reached == 0, f"io_uring reached {FORBIDDEN}:{port} past the supervisor: {proc.stdout}"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "io_uring" in proc.stderr and "bypass the egress supervisor" in proc.stderr, proc.stderr
