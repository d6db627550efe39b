"""Unix sockets under a policy with names (the egress supervisor).

Every sendmsg goes through the supervisor, which makes it on the
program's socket from copies. A file passed with SCM_RIGHTS is passed as
the kernel would: the supervisor takes its copy of the same open file
(pidfd_getfd) and sends that — no path is resolved. What stays refused,
with the reason on stderr: SCM_CREDENTIALS (the kernel would check them
against the supervisor), and connect or send with an address on a unix
socket — made by the supervisor the path would be resolved outside the
program's Landlock domain, and made by the program after a check another
thread could swap an unchecked socket onto the descriptor.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file


def _run(arena: Path, probes: dict[str, Path], user: str, *args: str) -> subprocess.CompletedProcess[str]:
    text = (
        'Name = "unix"\nExtends = ["base"]\n'
        '[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "unix"]\nConnect = ["tcp:api.test:443"]\n'
        f'[Filesystem]\nExec = ["{probes["unix_probe"]}"]\n[Misc]\nSyscalls = ["socketpair", "pipe", "pipe2", "recvmsg", "sendmsg", "getpid", "getuid", "getgid"]\n'
    )
    policy = policy_file(arena, text, "unix.toml")
    hosts = policy_file(arena, "192.0.2.7 api.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["unix_probe"]), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})


@pytest.mark.parametrize("user", USERS)
def test_a_file_passes_over_a_unix_socket(arena: Path, probes: dict[str, Path], user: str) -> None:
    proc = _run(arena, probes, user, "rights")
    assert proc.stdout.split()[-1:] == ["ok"], proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("attack", "answer", "reason"),
    [
        ("badfd", "errno=EBADF", ""),
        ("creds", "errno=EPERM", "only SCM_RIGHTS is passed on"),
    ],
)
def test_what_the_supervisor_cannot_send_for_the_program(arena: Path, probes: dict[str, Path], user: str, attack: str, answer: str, reason: str) -> None:
    proc = _run(arena, probes, user, attack)
    assert proc.stdout.split()[-1:] == [answer], proc.stdout + proc.stderr
    assert reason in proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_a_unix_connect_is_refused_and_says_why(arena: Path, probes: dict[str, Path], user: str) -> None:
    path = arena / "service.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    path.chmod(0o777)
    listener.listen(4)
    listener.settimeout(0.2)
    try:
        proc = _run(arena, probes, user, "connect", str(path))
        assert proc.stdout.split()[-1:] == ["errno=EPERM"], proc.stdout + proc.stderr
        assert "would be resolved outside the program's Landlock domain" in proc.stderr
        with pytest.raises(OSError):
            listener.accept()
    finally:
        listener.close()
