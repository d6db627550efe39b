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
import os
import select
import sys
from collections import Counter
from typing import Any

from . import kernel, runlog
from .egress import notify

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
    notif, resp = notify.Notif(), notify.Resp()
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
                if kernel._libc.ioctl(listener, ctypes.c_ulong(notify.SECCOMP_IOCTL_NOTIF_RECV), ctypes.byref(notif)) < 0:
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
                    resp.id, resp.val, resp.error, resp.flags = notif.id, 0, 0, notify.SECCOMP_USER_NOTIF_FLAG_CONTINUE
                kernel._libc.ioctl(listener, ctypes.c_ulong(notify.SECCOMP_IOCTL_NOTIF_SEND), ctypes.byref(resp))
            elif event & (select.POLLHUP | select.POLLERR):
                _, status = os.waitpid(pid, 0)
                return status


def run_logged(plan: dict[str, Any], report: Any, path: str, cmd: list[str], record_to: str | None = None) -> int:
    """Run CMD as a child in learning mode; print the summary (and write the
    record ``corral learn`` reads to RECORD_TO); pass its status on."""
    from .handoff import fork_confined

    sys.stdout.flush()
    sys.stderr.flush()
    child = fork_confined(plan, report, plan["bpf_log"], plan["bpf_log_self"], path, cmd, None, who="learning mode", code="R006")
    if child is None:
        return 2
    pid, listener = child.pid, child.listener
    child.release()
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
