"""The one place corral touches libseccomp.

libseccomp is reached through ``pyseccomp``, a ctypes binding with the same
API as libseccomp's official Python module (which is not on PyPI and only
imports under Debian's system interpreter). Keeping every call here means a
switch of binding touches one file. The import is lazy: ``check`` and the
AppArmor backend never pay for it.
"""

from __future__ import annotations

import errno as errno_mod
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ir import SyscallRule

#: Architectures corral builds filters for, by their OCI names.
ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
_PY_ARCH = {"x86_64": "X86_64", "aarch64": "AARCH64"}
#: libseccomp's attribute for its filter layout: 2 is the binary tree (2.5+).
_OPTIMIZE_BINARY_TREE = 2


def _lib() -> Any:
    """Import pyseccomp without its ~30 ms ``find_library`` subprocess.

    pyseccomp locates libseccomp with ``ctypes.util.find_library``, which
    runs ``ldconfig -p`` in a child process. Where the stable soname loads
    directly we answer that lookup ourselves while pyseccomp imports.
    """
    import sys

    if "pyseccomp" in sys.modules:
        return sys.modules["pyseccomp"]
    import ctypes
    import ctypes.util

    real = ctypes.util.find_library
    known = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}
    try:
        for soname in known.values():
            ctypes.CDLL(soname)
    except OSError:
        known = {}
    ctypes.util.find_library = lambda name: known.get(name) or real(name)
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = real
    return pyseccomp


def native_arch() -> str:
    """The machine's architecture by corral's name (x86_64, aarch64, ...)."""
    return os.uname().machine


@lru_cache(maxsize=8192)
def resolve(name: str, arch: str) -> int:
    """The syscall's number on ``arch``; negative if libseccomp knows it as
    absent there (a pseudo-number), -1 if libseccomp does not know it."""
    lib = _lib()
    return int(lib.resolve_syscall(getattr(lib.Arch, _PY_ARCH[arch]), name))


@lru_cache(maxsize=1)
def _table() -> dict[str, frozenset[str]]:
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).resolve().parent / "data" / "syscalls.toml").read_text())
    return {arch: frozenset(data[arch]) for arch in ARCHES}


@lru_cache(maxsize=1)
def libseccomp_version() -> str:
    """The installed libseccomp's version ("2.5.4"), or "" if it cannot be asked."""
    import ctypes

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        fn = ctypes.CDLL("libseccomp.so.2").seccomp_version
    except (OSError, AttributeError):
        return ""
    fn.restype = ctypes.POINTER(_Version)
    v = fn().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def is_known(name: str) -> bool:
    """Whether the syscall exists on some supported arch (from the shipped
    table of libseccomp's names, so validation never loads libseccomp)."""
    return any(name in names for names in _table().values())


def known_names() -> tuple[str, ...]:
    """Every syscall name of the supported arches, for "did you mean" hints."""
    return tuple(sorted(frozenset().union(*_table().values())))


def table_from_libseccomp() -> dict[str, list[str]]:
    """Ask libseccomp for every name it knows per arch (regenerates the table)."""
    lib = _lib()
    out: dict[str, list[str]] = {}
    for arch in ARCHES:
        code = getattr(lib.Arch, _PY_ARCH[arch])
        names = set()
        for nr in range(0, 1024):
            try:
                names.add(lib.resolve_syscall(code, nr).decode())
            except ValueError:
                continue
        out[arch] = sorted(names)
    return out


def errno_number(name: str) -> int:
    """An errno by its symbolic name (ENOSYS -> 38)."""
    value = getattr(errno_mod, name, None)
    if not isinstance(value, int):
        raise ValueError(name)
    return value


@dataclass(frozen=True)
class BuiltFilter:
    """A libseccomp filter context plus what went into it."""

    ctx: Any
    arch: str

    def export_bpf(self) -> bytes:
        with tempfile.TemporaryFile() as fh:
            self.ctx.export_bpf(fh)
            fh.seek(0)
            return fh.read()

    def export_pfc(self) -> str:
        with tempfile.TemporaryFile() as fh:
            self.ctx.export_pfc(fh)
            fh.seek(0)
            return fh.read().decode()

    def load(self) -> None:
        """Install the filter on the calling thread (sets no_new_privs)."""
        self.ctx.load()


#: Calls that can name a network peer, for the egress supervisor: they are
#: answered by it (USER_NOTIF) where the policy allows them. sendto with a
#: NULL address (argument 4) names no peer and stays allowed in the kernel.
PEER_CALLS = frozenset({"connect", "sendto", "sendmsg", "sendmmsg"})


#: Stands for the program's own pid in a filter built before the pid is
#: known: no pid reaches it (pid_max is at most 2**22), and ``corral run``
#: writes the real pid over it (``sandbox.apply.with_self_pid``).
SELF_PID_PLACEHOLDER = 0x5E1F5E1F


def build(
    rules: "tuple[SyscallRule, ...]",
    arch: str | None = None,
    *,
    notify: bool = False,
    supervise: frozenset[str] = frozenset(),
    self_pid: int | None = None,
) -> BuiltFilter:
    """Build a filter: default EPERM, one rule per allowed alternative.

    ``notify`` makes the default USER_NOTIF, for a supervisor that records
    and allows each call (learning mode). ``supervise`` names calls whose
    allowed alternatives go to a supervisor instead (USER_NOTIF; for
    sendto only when it carries an address).
    ``self_pid`` is what the program's own pid compares as
    (``SELF_PID_PLACEHOLDER`` for a plan); None, for an artifact, keeps only
    the pid-0 forms of such rules.
    """
    from .guards import resolve_self

    rules = resolve_self(rules, self_pid)
    lib = _lib()
    arch = arch or native_arch()
    default = lib.NOTIFY if notify else lib.ERRNO(errno_mod.EPERM)
    ctx = lib.SyscallFilter(default)
    if arch != native_arch():
        ctx.add_arch(getattr(lib.Arch, _PY_ARCH[arch]))
        ctx.remove_arch(lib.Arch.NATIVE)
    ctx.set_attr(lib.Attr.ACT_BADARCH, lib.KILL_PROCESS)
    try:
        ctx.set_attr(lib.Attr.CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE)
    except OSError:  # libseccomp < 2.5: keep the default linear layout
        pass
    for rule in rules:
        # libseccomp takes native numbers (negative pseudo-numbers for calls
        # the native arch lacks) and translates them for each arch in the filter.
        nr = resolve(rule.name, native_arch())
        if nr == -1:
            continue
        if rule.errno == errno_mod.EPERM and not notify:
            continue  # the default answer already: libseccomp refuses a rule that repeats it
        action = lib.ALLOW if rule.errno is None else lib.ERRNO(rule.errno)
        supervised = rule.errno is None and rule.name in supervise
        for alt in rule.alternatives or ((),):
            args = [
                lib.Arg(c.arg, getattr(lib, c.op.libseccomp), *((c.mask, c.value) if c.op.libseccomp == "MASKED_EQ" else (c.value, 0)))
                for c in alt
            ]
            if not supervised:
                ctx.add_rule(action, nr, *args)
            elif rule.name == "sendto" and not any(c.arg == 4 for c in alt):
                ctx.add_rule(lib.ALLOW, nr, *args, lib.Arg(4, lib.EQ, 0))
                ctx.add_rule(lib.NOTIFY, nr, *args, lib.Arg(4, lib.NE, 0))
            else:
                ctx.add_rule(lib.NOTIFY, nr, *args)
    return BuiltFilter(ctx, arch)


def self_pid_offsets(bpf: bytes) -> list[int]:
    """Byte offsets of the ``k`` of every ``jeq #SELF_PID_PLACEHOLDER``."""
    out = []
    for at in range(0, len(bpf), 8):
        code = int.from_bytes(bpf[at : at + 2], sys.byteorder)
        if code == 0x15 and int.from_bytes(bpf[at + 4 : at + 8], sys.byteorder) == SELF_PID_PLACEHOLDER:  # BPF_JMP|BPF_JEQ|BPF_K
            out.append(at + 4)
    return out


def _write_table() -> None:
    from pathlib import Path

    lines = [
        "# System call names per architecture, as libseccomp knows them: regenerate",
        "# with `python -m corral._seccomp` after a libseccomp upgrade. corral",
        "# validates policy syscall names against this table without loading",
        "# libseccomp; tests check that libseccomp resolves every name in it.",
        "",
    ]
    for arch, names in table_from_libseccomp().items():
        lines.append(f"{arch} = [")
        lines += ["  " + ", ".join(f'"{n}"' for n in names[i : i + 6]) + "," for i in range(0, len(names), 6)]
        lines.append("]")
    (Path(__file__).resolve().parent / "data" / "syscalls.toml").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    _write_table()

__all__ = ["PEER_CALLS", "ARCHES", "SELF_PID_PLACEHOLDER", "BuiltFilter", "build", "self_pid_offsets", "errno_number", "is_known", "known_names", "native_arch", "resolve"]
