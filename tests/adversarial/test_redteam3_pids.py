"""The program's "own pid", after the program's first process is gone.

Guard 'processes' allows prlimit64, setpriority, sched_set*, ioprio_set,
migrate_pages and move_pages only on the caller. ``corral run`` wrote the
pid it execs the program as into the filter as "the caller's own", but a
filter is inherited: a child outlives that first process, whose pid the
kernel then hands to the next process started — here, with pid_max 32768,
within seconds — and the child changed that process's limits (Landlock
has no hook on prlimit, setpriority, sched_setaffinity or ioprio_set; the
kernel only asks for the same user).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _spawn_as(pid: int, cmd: list[str]) -> subprocess.Popen[bytes] | None:
    """Start ``cmd`` as process ``pid`` (root may set the pid the next fork
    gets); None when another process took it first."""
    for _ in range(50):
        try:
            NS_LAST_PID.write_text(str(pid - 1))
        except OSError:
            return None
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


@pytest.mark.parametrize("user", USERS)
def test_a_child_cannot_change_the_limits_of_whoever_takes_the_first_pid(arena: Path, probes: dict[str, Path], user: str) -> None:
    prefix = as_user(user)
    if os.geteuid() != 0:
        pytest.skip("placing a process at a chosen pid needs root")
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "pids"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n[Runtime]\nFlags = ["proc"]\n')
    read_end, write_end = os.pipe()
    try:
        cmd = [*prefix, sys.executable, "-I", "-m", "corral.cli", "run", "-q", str(policy), "--", str(probe), "pidreuse", str(write_end)]
        first = subprocess.run(cmd, capture_output=True, text=True, pass_fds=(write_end,), cwd="/", timeout=60, stdin=subprocess.DEVNULL)
        os.close(write_end)
        write_end = -1
        assert first.returncode == 0 and first.stdout.startswith("pid="), first.stdout + first.stderr
        pid = int(first.stdout.split("=")[1])
        victim = None
        ready, _, _ = select.select([read_end], [], [], 1)
        if not ready:  # the filter let the child through: give the pid to another process of the same user
            victim = _spawn_as(pid, [*prefix, "sleep", "60"])
        try:
            ready, _, _ = select.select([read_end], [], [], 40)
            answer = os.read(read_end, 100).decode().strip() if ready else "no answer"
        finally:
            if victim is not None:
                victim.kill()
                victim.wait()
        assert answer == "errno=EPERM", f"a confined child changed the limits of process {pid}, started outside the sandbox after the program's first process ({answer}; victim placed: {victim is not None})"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


@pytest.mark.parametrize("user", USERS)
def test_an_io_signal_to_an_outside_process_is_not_sent(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """F_SETOWN + F_SETSIG + O_ASYNC: the kernel sends the signal when the
    pipe becomes readable, no kill(2) for the filter to see. Landlock's
    signal scope covers it (the owner is recorded with its domain): holds."""
    prefix = as_user(user)
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "sigio"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\n')
    bare = subprocess.Popen([*prefix, "sleep", "60"])
    subprocess.run([*prefix, str(probe), "sigio", str(bare.pid), "9"], capture_output=True, timeout=30)
    assert bare.wait(timeout=10) == -9, "the attack does not kill without corral: the test would prove nothing"
    victim = subprocess.Popen([*prefix, "sleep", "60"])
    try:
        got = confined(policy, "redteam3_probe", "sigio", str(victim.pid), "9", user=user)
        assert got.answer == "ok", got  # every call went through; the kernel sent nothing out
        assert victim.poll() is None, f"a confined program killed process {victim.pid} outside the sandbox through SIGIO"
    finally:
        victim.kill()
        victim.wait()
