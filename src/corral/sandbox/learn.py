"""``corral run --log``: learning mode for system calls.

The program runs under the policy's filter with one change: where the
filter would answer EPERM it asks a supervisor instead (seccomp user
notification). The supervisor (corral, the parent) records the call, lets
it proceed, and when the program exits prints what would have been denied
in policy terms: a flag to add, a socket option, a protocol, a syscall.

Landlock, capabilities and no_new_privs stay enforced: this mode learns
system calls and the capabilities calls fail without, not paths (``corral
trace`` learns those; see ``runlog`` for what it cannot see). What it saw
is kept bounded, summarised and, with ``--log-to FILE``, written as a
record ``corral learn --into POLICY`` merges (``runlog``). Because corral
must stay alive to answer, the program runs as corral's child here, not in
its place; its exit status is passed on.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import signal
import struct
import sys
import time
from collections import Counter
from typing import Any

from . import kernel, runlog

SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
NR_PIDFD_OPEN, NR_PIDFD_GETFD = 434, 438


class _Data(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32), ("ip", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("data", _Data)]


class _Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


def _syscall(nr: int, *args: int) -> int:
    ret = int(kernel._libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args)))
    if ret < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return ret


def _load_with_listener(bpf: bytes) -> int:
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = kernel._SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    nr = kernel._NR["seccomp"]
    return kernel._check(int(kernel._libc.syscall(ctypes.c_long(nr), ctypes.c_uint(kernel.SECCOMP_SET_MODE_FILTER), ctypes.c_uint(SECCOMP_FILTER_FLAG_NEW_LISTENER), ctypes.byref(prog))), "seccomp(NEW_LISTENER)")


#: ``ir.SELF_PID``: an argument value standing for the program's own pid.
_SELF_PID = -2
_CMP = {
    "eq": lambda v, x, m: v == x,
    "ne": lambda v, x, m: v != x,
    "lt": lambda v, x, m: v < x,
    "le": lambda v, x, m: v <= x,
    "gt": lambda v, x, m: v > x,
    "ge": lambda v, x, m: v >= x,
    "masked_eq": lambda v, x, m: v & m == x,
}


def refused_by(plan: dict[str, Any], pid: int) -> Any:
    """A function (nr, args) -> why the call stays refused in learning mode,
    or "": the policy's DenySyscalls and the guards (TIOCSTI, MSG_FASTOPEN,
    other processes) are never let through, whatever is being learned.
    The arguments are the registers the kernel copied: no race."""
    table: dict[int, list[tuple[list[list[tuple[int, str, int, int]]], str]]] = {}
    for name, nr, alternatives, origin in plan["refusals"]:
        table.setdefault(nr, []).append((alternatives, f"{origin}:{name}"))

    def why(nr: int, args: Any) -> str:
        for alternatives, origin in table.get(nr, ()):
            if not alternatives or any(all(_CMP[op](int(args[a]), pid if x == _SELF_PID else x, m) for a, op, x, m in alt) for alt in alternatives):
                return origin
        return ""

    return why


def _supervise(listener: int, pid: int, seen: "runlog.Seen", allowed: "frozenset[int]" = frozenset(), why: Any = lambda nr, args: "", guarded: "Counter[str] | None" = None) -> int:
    """Answer notifications until the child exits; count what was asked
    (bounded: ``runlog.Seen``). ``allowed``: calls the policy allows that
    come here only for the capability check. ``why``: what stays refused
    (``refused_by``); guard refusals are counted in ``guarded`` instead.
    Returns the child's status."""
    notif, resp = _Notif(), _Resp()
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    status = 0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        for _, event in poller.poll(100):
            if event & select.POLLIN:
                ctypes.memset(ctypes.byref(notif), 0, ctypes.sizeof(notif))
                if kernel._libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_RECV), ctypes.byref(notif)) < 0:
                    continue  # the caller went away meanwhile
                refused = why(notif.data.nr, notif.data.args)
                if refused.startswith("guard ") and guarded is not None:
                    if len(guarded) < 64 or refused in guarded:  # bounded, like Seen
                        guarded[refused] += 1
                else:
                    seen.add(notif.data.nr, notif.data.args, notif.pid, notif.data.nr in allowed)
                if refused:
                    resp.id, resp.val, resp.error, resp.flags = notif.id, 0, -errno.EPERM, 0
                else:
                    resp.id, resp.val, resp.error, resp.flags = notif.id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE
                kernel._libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_SEND), ctypes.byref(resp))
            elif event & (select.POLLHUP | select.POLLERR):
                _, status = os.waitpid(pid, 0)
                return status


def run_logged(plan: dict[str, Any], report: Any, path: str, cmd: list[str], record_to: str | None = None) -> int:
    """Run CMD as a child in learning mode; print the summary (and write the
    record ``corral learn`` reads to RECORD_TO); pass its status on."""
    from .apply import SandboxError, apply

    shared = mmap.mmap(-1, 16)
    shared[0:16] = struct.pack("qq", -1, 0)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            apply(plan, report, seccomp=False)  # the filter comes with a listener, below
        except SandboxError as exc:
            os.write(2, (exc.render() + "\n").encode())
            os._exit(2)
        except BaseException:
            os._exit(2)
        from .apply import with_self_pid

        listener = _load_with_listener(with_self_pid(plan["bpf_log"], plan["bpf_log_self"], os.getpid()))
        shared[0:8] = struct.pack("q", listener)  # memory, not a syscall: nothing to notify
        # The listener is close-on-exec: wait (in memory) until the supervisor
        # holds its own copy. A system call made meanwhile just blocks on it.
        while shared[8:16] == b"\0" * 8:
            pass
        try:
            os.execv(path, cmd)  # blocks on the supervisor if execve is outside the policy
        finally:
            os._exit(126)
    deadline = time.monotonic() + 10
    while struct.unpack("q", shared[0:8])[0] < 0:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return 2
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise SandboxError("learning mode: the child never installed its filter", code="R006")
        time.sleep(0.0005)
    child_fd = struct.unpack("q", shared[0:8])[0]
    try:
        pidfd = _syscall(NR_PIDFD_OPEN, pid, 0)
        listener = _syscall(NR_PIDFD_GETFD, pidfd, child_fd, 0)
        os.close(pidfd)
    except OSError as exc:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise SandboxError(f"learning mode: cannot take the child's seccomp listener: {exc.strerror}", "learning mode needs Linux 5.6 or later (pidfd_getfd)", code="R006") from None
    shared[8:16] = struct.pack("q", 1)
    seen = runlog.Seen()
    guarded: Counter[str] = Counter()
    allowed = frozenset(_syscall_numbers(set(plan["syscall_names"]) & set(runlog.CAPABILITY_CALLS)))
    status = _supervise(listener, pid, seen, allowed, refused_by(plan, pid), guarded)
    os.close(listener)
    print(summarize(plan, seen, guarded), file=sys.stderr)
    if record_to is not None:
        runlog.write_record(record_to, runlog.record(plan, seen, cmd))
        print(f"corral run --log: record written to {record_to}: `corral learn {record_to} --into POLICY` merges it", file=sys.stderr)
    if os.WIFSIGNALED(status):
        os.kill(os.getpid(), os.WTERMSIG(status))
    return os.WEXITSTATUS(status)


def _syscall_numbers(names: set[str]) -> list[int]:
    from .. import _seccomp

    return [nr for nr in (_seccomp.resolve(n, _seccomp.native_arch()) for n in sorted(names)) if nr >= 0]


def summarize(plan: dict[str, Any], seen: "runlog.Seen", guarded: "Counter[str] | None" = None) -> str:
    """What would have been denied, as changes to the policy; before it,
    what stayed refused because a guard refuses it whatever the policy says."""
    from ..guards import guards

    kept = []
    for origin, count in sorted((guarded or Counter()).items()):
        name, _, call = origin.removeprefix("guard ").partition(":")
        guard = guards()[name]
        lift = f"; flag {guard.lifted_by} lifts it" if guard.lifted_by else "; nothing lifts it"
        kept.append(f"  {call}: refused by guard {name} ({guard.meaning}){lift}  x{count}")
    if kept:
        kept.insert(0, "corral run --log: refused whatever the policy allows:")
    return "\n".join([*kept, runlog.summarize(plan, seen)])
