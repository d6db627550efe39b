"""What the egress supervisor writes into the program's memory (sendmmsg's
msg_len) it writes through /proc/TID/mem opened before the call is checked
still pending, and a pidfd it takes files through (SCM_RIGHTS) is checked
the same way: by a thread id alone, after the caller was killed and its id
reused, it wrote into (or took the files of) whichever process had the id.
That race needs the pid space to wrap inside one call and cannot be staged
here; this proves the answer still reaches the program, as root and nobody.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file


@pytest.mark.parametrize("user", USERS)
def test_sendmmsg_lengths_reach_the_program(arena: Path, probes: dict[str, Path], user: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(30)
        port = sink.getsockname()[1]
        text = (
            'Name = "mmsg"\nExtends = ["base"]\n'
            f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "udp"]\nConnect = ["tcp:api.test:443", "udp:127.0.0.1:{port}"]\n'
            f'[Filesystem]\nExec = ["{probes["redteam4_probe"]}"]\n[Misc]\nSyscalls = ["sendmmsg"]\n'
        )
        policy = policy_file(arena, text, "mmsg.toml")
        hosts = policy_file(arena, "192.0.2.7 api.test\n", "hosts")
        cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["redteam4_probe"]), "mmsg", str(port)]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
        assert run.stdout.strip() == "sent=2 len=3,5", (run.stdout, run.stderr)
        assert sorted([sink.recv(64), sink.recv(64)]) == [b"abc", b"defgh"]
