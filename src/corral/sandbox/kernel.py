"""The kernel interfaces ``corral run`` applies: Landlock, seccomp, prctl,
capabilities. Plain ctypes over libc's ``syscall``; nothing else is imported,
because this module is on the start-up path of every confined command.

Constants are from the Linux UAPI headers (linux/landlock.h,
linux/seccomp.h, linux/prctl.h, linux/capability.h). The Landlock and
seccomp syscall numbers below are the same on x86_64 and aarch64.
"""

from __future__ import annotations

import ctypes
import os

from ..landlock_rights import FILE_RIGHTS, FS_BITS, NET_BITS, SCOPE_BITS  # noqa: F401 - apply reads them here

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

_NR = {
    "x86_64": {"seccomp": 317, "capget": 125, "capset": 126},
    "aarch64": {"seccomp": 277, "capget": 90, "capset": 91},
}[os.uname().machine]
NR_LANDLOCK_CREATE_RULESET, NR_LANDLOCK_ADD_RULE, NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH, LANDLOCK_RULE_NET_PORT = 1, 2

PR_GET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 21, 38, 39
PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 23, 24, 47
PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL = 2, 4
SECCOMP_SET_MODE_FILTER = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class KernelError(OSError):
    """A kernel call failed; ``what`` says which step."""

    def __init__(self, what: str, err: int):
        super().__init__(err, f"{what}: {os.strerror(err)}")
        self.what = what


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise KernelError(what, ctypes.get_errno())
    return ret


def mask(names: list[str] | tuple[str, ...], table: dict[str, tuple[int, int]], abi: int) -> int:
    """The bitmask of the named rights that exist at Landlock ``abi``."""
    out = 0
    for name in names:
        bit, since = table[name]
        if since <= abi:
            out |= bit
    return out


def landlock_abi() -> int:
    """The running kernel's Landlock ABI, 0 if Landlock is absent or disabled.

    ``CORRAL_LANDLOCK_ABI`` caps it, to exercise the behaviour of older
    kernels (fail-closed, best-effort) on a newer one.
    """
    ret = _libc.syscall(ctypes.c_long(NR_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    abi = max(0, int(ret))
    cap = os.environ.get("CORRAL_LANDLOCK_ABI")
    if cap is not None and cap.isdigit():
        abi = min(abi, int(cap))
    return abi


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def landlock_create(handled_fs: int, handled_net: int, scoped: int, abi: int) -> int:
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    return _check(int(_libc.syscall(ctypes.c_long(NR_LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))), "landlock_create_ruleset")


def landlock_add_path(ruleset: int, fd: int, allowed: int) -> None:
    attr = _PathBeneathAttr(allowed, fd)
    _check(int(_libc.syscall(ctypes.c_long(NR_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(attr), ctypes.c_uint32(0))), "landlock_add_rule (path)")


def landlock_add_port(ruleset: int, port: int, allowed: int) -> None:
    attr = _NetPortAttr(allowed, port)
    _check(int(_libc.syscall(ctypes.c_long(NR_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_NET_PORT), ctypes.byref(attr), ctypes.c_uint32(0))), "landlock_add_rule (port)")


def landlock_restrict(ruleset: int) -> None:
    _check(int(_libc.syscall(ctypes.c_long(NR_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0))), "landlock_restrict_self")


NR_OPENAT2, RESOLVE_NO_SYMLINKS, _AT_FDCWD = 437, 0x04, -100


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_no_symlinks(path: str) -> int:
    """An O_PATH descriptor for ``path``, refusing (ELOOP) if any component
    is a symlink: openat2(RESOLVE_NO_SYMLINKS), or O_NOFOLLOW on kernels
    before 5.6 (then only the last component is checked)."""
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS)
    fd = int(_libc.syscall(ctypes.c_long(NR_OPENAT2), ctypes.c_int(_AT_FDCWD), os.fsencode(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))))
    if fd >= 0:
        return fd
    err = ctypes.get_errno()
    if err != 38:  # ENOSYS
        raise OSError(err, os.strerror(err), path)
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    if os.path.islink(f"/proc/self/fd/{fd}") and os.readlink(f"/proc/self/fd/{fd}") != path:
        os.close(fd)
        raise OSError(40, os.strerror(40), path)  # ELOOP
    return fd


def set_no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl(PR_SET_NO_NEW_PRIVS)")


def no_new_privs() -> bool:
    return _libc.prctl(PR_GET_NO_NEW_PRIVS, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 1


def seccomp_mode() -> int:
    """2 in filter mode; -1 with EPERM also proves a filter (it denied prctl)."""
    ret = _libc.prctl(PR_GET_SECCOMP, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    return ret if ret >= 0 else -ctypes.get_errno()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_load(bpf: bytes) -> None:
    """Install a BPF program (built by libseccomp) with seccomp(2)."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(int(_libc.syscall(ctypes.c_long(_NR["seccomp"]), ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(0), ctypes.byref(prog))), "seccomp(SECCOMP_SET_MODE_FILTER)")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of this thread as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(int(_libc.syscall(ctypes.c_long(_NR["capget"]), ctypes.byref(header), data)), "capget")
    eff, perm, inh = (getattr(data[0], f) | (getattr(data[1], f) << 32) for f in ("effective", "permitted", "inheritable"))
    return eff, perm, inh


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(int(_libc.syscall(ctypes.c_long(_NR["capset"]), ctypes.byref(header), data)), "capset")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except OSError:
        return 40


def drop_bounding(cap: int) -> None:
    _check(_libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl(PR_CAPBSET_DROP, {cap})")


def in_bounding(cap: int) -> bool:
    return _libc.prctl(PR_CAPBSET_READ, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 1


def clear_ambient() -> None:
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def raise_ambient(cap: int) -> None:
    _check(_libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_RAISE), ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl(PR_CAP_AMBIENT_RAISE, {cap})")
