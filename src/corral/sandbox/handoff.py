"""Fork a program that confines itself and hands its seccomp listener over.

Both supervisors of ``corral run`` — the egress supervisor (host names,
Deny, ALPN) and learning mode (``--log``) — start the same way: corral
forks; the child applies the policy (Landlock, capabilities,
no_new_privs), installs the policy's filter with a user-notification
listener, and publishes the listener's number in shared memory; the parent
takes a copy with pidfd_getfd and only then lets the child exec.

Why shared memory and a spin, not a pipe: once the filter is installed,
any system call the child makes may be one the filter hands to the
listener, which nobody is reading yet. Writing to an ``mmap`` page is not a
system call. The child spins (no syscall) until the parent says it holds
the listener; the listener is close-on-exec, so the parent must hold its
copy before the exec.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import struct
import time
from dataclasses import dataclass
from typing import Any

from . import kernel
from .egress import notify

PR_SET_PDEATHSIG = 1
#: How long the parent waits for the child to install its filter.
DEADLINE_SECONDS = 10.0


@dataclass
class Handoff:
    """A confined child waiting (spinning, without system calls) to exec,
    and the parent's copy of its listener. ``release()`` lets it exec;
    the caller sets up whatever must be in place before then."""

    pid: int
    listener: int
    shared: mmap.mmap

    def release(self) -> None:
        self.shared[8:16] = struct.pack("q", 1)


def fork_confined(plan: dict[str, Any], report: Any, bpf: bytes, self_offsets: list[int], path: str, argv: list[str], env: dict[str, str] | None, *, who: str, code: str = "", die_with_parent: bool = False) -> Handoff | None:
    """Fork; the child confines itself with ``plan`` (its filter ``bpf``,
    with the child's pid written at ``self_offsets``, loaded with a
    listener) and execs ``path``; the parent takes the listener.

    Returns None if the child failed to confine itself (it said why on
    stderr and exited 2: the caller passes that status on). ``who`` names
    the supervisor in errors; ``die_with_parent`` kills the program if
    corral dies (the egress supervisor: without it the program's calls
    would have no one to answer them)."""
    from .apply import SandboxError, apply, with_self_pid

    shared = mmap.mmap(-1, 16)
    shared[0:16] = struct.pack("qq", -1, 0)
    pid = os.fork()
    if pid == 0:
        try:
            if die_with_parent:
                kernel._libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
            apply(plan, report, seccomp=False)  # the filter comes with a listener, below
            listener = notify.load_with_listener(with_self_pid(bpf, self_offsets, os.getpid()))
        except SandboxError as exc:
            os.write(2, (exc.render() + "\n").encode())
            os._exit(2)
        except BaseException as exc:  # noqa: BLE001 - the child must never return into corral
            os.write(2, (SandboxError(f"{who}: the program could not confine itself: {exc}").render() + "\n").encode())
            os._exit(2)
        shared[0:8] = struct.pack("q", listener)  # memory, not a system call: nothing to notify
        while shared[8:16] == b"\0" * 8:
            pass
        os.close(listener)  # the parent has its copy (it is close-on-exec anyway)
        try:
            if env is None:
                os.execv(path, argv)
            else:
                os.execve(path, argv, env)
        finally:
            os._exit(126)
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while struct.unpack("q", shared[0:8])[0] < 0:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return None
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise SandboxError(f"{who}: the program never installed its filter", code=code)
            time.sleep(0.0001)
        pidfd = notify.pidfd_open(pid)
        try:
            listener = notify.pidfd_getfd(pidfd, struct.unpack("q", shared[0:8])[0])
        finally:
            os.close(pidfd)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise SandboxError(f"{who}: cannot take the program's seccomp listener: {exc.strerror}", f"{who} needs Linux 5.6 or later (pidfd_getfd)", code=code) from None
    return Handoff(pid, listener, shared)
