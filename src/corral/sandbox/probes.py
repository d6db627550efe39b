"""Probes: one question each ("may it write /tmp/x?"), asked of the kernel.

A probe runs in a forked child. Everything the question does not ask about
(creating the socket whose option is set, resolving names) happens before
the child confines itself with the very code ``corral run`` uses; then it
makes exactly one (or two) system calls and writes the result into memory
shared with the parent, which needs no system call. So the policy under
test never has to allow the probe's own machinery.

Outcome: ``deny`` when the kernel answered EACCES or EPERM (Landlock,
seccomp, capabilities, AppArmor); ``allow`` otherwise, including errors
that mean the operation was permitted but failed (ECONNREFUSED, ENOENT).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..policy.testspec import PROBES
from . import kernel

__all__ = ["PROBES", "Outcome", "prepare", "run_probe"]

_libc = kernel._libc
#: Signals a probe child that a filter killed, or that exec'd successfully.
_PENDING, _DONE = 0x5EED, 0xD0DE


_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX, "netlink": socket.AF_NETLINK, "packet": socket.AF_PACKET}
_TYPES = {"stream": socket.SOCK_STREAM, "dgram": socket.SOCK_DGRAM, "raw": socket.SOCK_RAW, "seqpacket": socket.SOCK_SEQPACKET}


@dataclass(frozen=True)
class Outcome:
    verdict: str  # "allow" | "deny" | "error"
    detail: str


def _nr(name: str) -> int:
    from .. import _seccomp

    return _seccomp.resolve(name, _seccomp.native_arch())


def _call(name: str, *args: Any) -> Callable[[], tuple[int, int]]:
    number = ctypes.c_long(_nr(name))
    c_args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]

    def run() -> tuple[int, int]:
        ctypes.set_errno(0)
        ret = int(_libc.syscall(number, *c_args))
        return ret, ctypes.get_errno() if ret < 0 else 0

    return run


def prepare(kind: str, params: dict[str, Any]) -> tuple[Callable[[], tuple[int, int]], list[Any]]:
    """The system call(s) a probe makes, prepared before confinement.

    Returns the call and objects that must stay alive until it has run.
    """
    at_fdcwd = -100
    keep: list[Any] = []
    path = params.get("Path", "")
    cpath = ctypes.c_char_p(path.encode())
    keep.append(cpath)
    if kind in ("read", "write", "create", "list"):
        flags = {
            "read": os.O_RDONLY,
            "list": os.O_RDONLY | os.O_DIRECTORY,
            "write": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            "create": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
        }[kind]
        opener = _call("openat", at_fdcwd, cpath, flags | os.O_CLOEXEC, 0o600)
        buf = ctypes.create_string_buffer(4096)
        keep.append(buf)
        second = {"read": "read", "list": "getdents64", "write": "write"}.get(kind)
        second_nr = ctypes.c_long(_nr(second)) if second else None
        count = ctypes.c_long(4096 if kind == "list" else 1)

        def open_then_use() -> tuple[int, int]:
            fd, err = opener()
            if fd < 0 or second_nr is None:
                return fd, err
            ret = int(_libc.syscall(second_nr, ctypes.c_long(fd), buf, count))
            return ret, ctypes.get_errno() if ret < 0 else 0

        return open_then_use, keep
    if kind == "mkdir":
        return _call("mkdirat", at_fdcwd, cpath, 0o700), keep
    if kind == "exec":
        argv = (ctypes.c_char_p * 2)(path.encode(), None)
        envp = (ctypes.c_char_p * 1)(None)
        keep += [argv, envp]
        return _call("execve", cpath, argv, envp), keep
    if kind in ("connect", "bind"):
        sockaddr = struct.pack("!HH4s8x", socket.AF_INET, int(params["Port"]), socket.inet_aton("127.0.0.1"))
        sockaddr = struct.pack("=H", socket.AF_INET) + sockaddr[2:]
        addr = ctypes.create_string_buffer(sockaddr, len(sockaddr))
        keep.append(addr)
        make = _call("socket", socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
        nr = ctypes.c_long(_nr(kind))

        def sock_then_use() -> tuple[int, int]:
            fd, err = make()
            if fd < 0:
                return fd, err
            ret = int(_libc.syscall(nr, ctypes.c_long(fd), addr, ctypes.c_long(len(sockaddr))))
            return ret, ctypes.get_errno() if ret < 0 else 0

        return sock_then_use, keep
    if kind == "socket":
        return _call("socket", _FAMILIES[params["Family"]], _TYPES[params["Type"]], 0), keep
    if kind == "raw-socket":
        return _call("socket", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), keep
    if kind == "setsockopt":
        from ..policy import catalog

        option = catalog.socket_options()[params["Option"]]
        sock = socket.socket(socket.AF_INET6 if option.level_name == "ipproto_ipv6" else socket.AF_INET, socket.SOCK_STREAM)
        one = ctypes.c_int(1)
        keep += [sock, one]
        return _call("setsockopt", sock.fileno(), option.level, option.optname, ctypes.byref(one), 4), keep
    if kind == "ptrace":
        return _call("ptrace", 0, 0, 0, 0), keep  # PTRACE_TRACEME
    if kind == "mount":
        target = ctypes.c_char_p(b"/nonexistent-corral-probe-target")
        keep += [target]
        return _call("mount", ctypes.c_char_p(b"none"), target, ctypes.c_char_p(b"tmpfs"), 0, None), keep
    if kind == "setuid":
        return _call("setuid", 65534), keep
    if kind == "userns":
        return _call("unshare", 0x10000000), keep  # CLONE_NEWUSER
    if kind == "kill":
        return _reach_parent(keep), keep
    raise ValueError(kind)


def _reach_parent(keep: list[Any]) -> Callable[[], tuple[int, int]]:
    """Every way a program reaches another process by its pid: the signal
    calls (signal 0: the permission check alone), pidfd_send_signal, and
    prlimit64 (reading the limit needs the same permission as setting it).
    The target is the parent (the probe child's getppid()), outside the
    sandbox. The answer is the first call that got through, so the probe
    fails as soon as any of them does."""
    parent = os.getpid()
    info = ctypes.create_string_buffer(struct.pack("iii", 0, 0, -1), 128)  # si_signo 0, si_code SI_QUEUE
    limit = ctypes.create_string_buffer(16)
    keep += [info, limit]
    calls = [
        _call("kill", parent, 0),
        _call("tkill", parent, 0),
        _call("tgkill", parent, parent, 0),
        _call("rt_sigqueueinfo", parent, 0, info),
        _call("rt_tgsigqueueinfo", parent, parent, 0, info),
        _call("prlimit64", parent, 4, None, limit),  # RLIMIT_CORE, read
    ]
    pidfd_open = _call("pidfd_open", parent, 0)
    send = ctypes.c_long(_nr("pidfd_send_signal"))

    def run() -> tuple[int, int]:
        answers = [call() for call in calls]
        fd, err = pidfd_open()
        if fd >= 0:
            ret = int(_libc.syscall(send, ctypes.c_long(fd), ctypes.c_long(0), None, ctypes.c_long(0)))
            answers.append((ret, ctypes.get_errno() if ret < 0 else 0))
        for ret, err in answers:
            if ret >= 0 or err not in (errno.EPERM, errno.EACCES):
                return ret, err
        return answers[0]

    return run


#: Probes that change or run something on the host: never run unconfined
#: (``unconfined_denial`` asks access(2) for them instead).
FILE_PROBES = ("read", "list", "write", "create", "mkdir", "exec")


def run_probe(plan: dict[str, Any], kind: str, params: dict[str, Any], *, timeout: float = 10.0, confine: bool = True) -> Outcome:
    """Ask one question under ``plan``'s confinement, in a forked child
    (``confine=False``: the same question without it, for what the plain
    permissions of this user already deny; never for ``FILE_PROBES``)."""
    from .apply import SandboxError, apply, check

    if not confine and kind in FILE_PROBES:
        raise ValueError(f"the {kind} probe is not run unconfined")
    report = check(plan, best_effort=False) if confine else None
    call, keep = prepare(kind, params)
    path = params.get("Path", "")
    existed = bool(path) and os.path.lexists(path)
    shared = mmap.mmap(-1, 40)
    shared[0:40] = struct.pack("qqqqq", _PENDING, 0, 0, -1, 0)
    supervisor = None
    if plan.get("egress") and confine:  # names, Deny, ALPN: probe under the egress supervisor, as corral run does
        from .egress.supervisor import Supervisor

        supervisor = Supervisor(plan)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for sig in (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGSYS):
                signal.signal(sig, signal.SIG_DFL)
            try:
                if report is not None:
                    apply(plan, report, seccomp=supervisor is None)
                    if supervisor is not None:
                        from .egress.notify import load_with_listener

                        shared[24:32] = struct.pack("q", load_with_listener(plan["bpf_egress"]))
                        while shared[32:40] == b"\0" * 8:
                            pass  # until the supervisor holds the listener
            except (SandboxError, OSError):
                shared[0:8] = struct.pack("q", -1)
                code = 3
            else:
                ret, err = call()
                shared[0:24] = struct.pack("qqq", _DONE, ret, err)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    status = 0
    if supervisor is not None:
        status = _supervise(supervisor, pid, shared, deadline)
    while supervisor is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return Outcome("error", f"timed out after {timeout:.0f}s")
        time.sleep(0.002)
    del keep
    if kind in ("write", "create", "mkdir") and not existed and os.path.lexists(path):
        (os.rmdir if kind == "mkdir" else os.unlink)(path)  # leave no trace of an allowed probe
    state, ret, err = struct.unpack("qqq", shared[0:24])
    if state == -1:
        return Outcome("error", "the policy could not be applied")
    if state == _PENDING:
        if kind == "exec" and os.WIFEXITED(status):
            return Outcome("allow", f"exec'd; the program exited {os.WEXITSTATUS(status)}")
        return Outcome("error", f"the probe died ({_status(status)})")
    if ret >= 0:
        return Outcome("allow", f"returned {ret}")
    name = errno.errorcode.get(err, str(err))
    if err in (errno.EACCES, errno.EPERM):
        return Outcome("deny", name)
    return Outcome("allow", f"permitted, then failed with {name}")


def _supervise(supervisor: Any, pid: int, shared: mmap.mmap, deadline: float) -> int:
    """Take the probe's listener and answer its calls until it exits; its status."""
    from .egress import notify

    while struct.unpack("q", shared[24:32])[0] < 0:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.0005)
    pidfd = notify.pidfd_open(pid)
    supervisor.child, supervisor.listener = pid, notify.pidfd_getfd(pidfd, struct.unpack("q", shared[24:32])[0])
    os.close(pidfd)
    shared[32:40] = struct.pack("q", 1)
    try:
        return int(supervisor.serve())
    finally:
        os.close(supervisor.listener)
        supervisor.close()


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.WEXITSTATUS(status)}"


def unconfined_denial(plan: dict[str, Any], kind: str, params: dict[str, Any]) -> str | None:
    """Why this user's plain permissions deny the probe without any policy
    (an errno name), or None when they allow it.

    File probes ask access(2) (with the effective ids) and change nothing;
    the others run in a forked child without confinement: they make a
    socket, bind or connect on 127.0.0.1, or ask for something a child
    may ask for (ptrace TRACEME, setuid, a user namespace, a mount on a
    path that does not exist)."""
    if kind in FILE_PROBES:
        path = params.get("Path", "")
        parent = os.path.dirname(path.rstrip("/")) or "/"
        target, mode = {
            "read": (path, os.R_OK),
            "list": (path, os.R_OK | os.X_OK),
            "exec": (path, os.X_OK),
            "write": (path, os.W_OK) if os.path.lexists(path) else (parent, os.W_OK | os.X_OK),
            "create": (parent, os.W_OK | os.X_OK),
            "mkdir": (parent, os.W_OK | os.X_OK),
        }[kind]
        if not os.path.lexists(target):
            return None  # a missing path: the probe itself reports it
        return None if os.access(target, mode, effective_ids=True) else "EACCES"
    outcome = run_probe(plan, kind, params, confine=False)
    return outcome.detail if outcome.verdict == "deny" else None
