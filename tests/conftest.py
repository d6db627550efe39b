"""Shared helpers: compile snippets, run the real apparmor_parser, and
enforce a real seccomp filter in a forked child."""

from __future__ import annotations

import ctypes
import faulthandler
import mmap
import os
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from corral import _seccomp
from corral._tools import find
from corral.ir import IR
from corral.lower import lower
from corral.policy import load_policy_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def reference(name: str, what: str) -> Path:
    """Outside reference data in ../shared/reference (not shipped with corral):
    its path, or a skip that names what is missing and where it was looked for."""
    path = ROOT.parent / "shared/reference" / name
    if not path.is_file():
        pytest.skip(f"needs {what} at {path} (outside reference data, not shipped with corral)")
    return path


def ir_of(text: str, file: str = "test.toml") -> IR:
    return lower(load_policy_text(text, file))


def apparmor_parser() -> str:
    found = find("apparmor_parser")
    if not found:
        pytest.fail("apparmor_parser is not installed: run `bash dev.sh test`, which installs it")
    return found


def apparmor_compile(profile: str | bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Compile a profile with the real parser, offline (-Q -S); return the result."""
    path = tmp_path / "profile.apparmor"
    path.write_bytes(profile if isinstance(profile, bytes) else profile.encode())
    # -S writes the compiled binary policy to stdout: discard it, keep stderr
    return subprocess.run([apparmor_parser(), "-Q", "-S", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    return _seccomp.resolve(name, _seccomp.native_arch())


Probe = Callable[[], tuple[int, int]]


def syscall_probe(name: str, *args: object) -> Probe:
    """A probe that calls a syscall directly and reports (return, errno)."""
    number = nr(name)
    c_args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]

    def probe() -> tuple[int, int]:
        ctypes.set_errno(0)
        ret = LIBC.syscall(ctypes.c_long(number), *c_args)
        return int(ret), ctypes.get_errno()

    return probe


def run_under_filter(ir: IR, probes: Sequence[Probe]) -> list[tuple[int, int]]:
    """Load the IR's seccomp filter in a forked child, run the probes there,
    and return each probe's (return value, errno).

    Results travel through shared memory, which needs no system call, so
    even a filter that allows nothing (not even exit) can report back.
    """
    built = _seccomp.build(ir.syscalls)
    shared = mmap.mmap(-1, 16 * (len(probes) + 1))
    pid = os.fork()
    if pid == 0:  # child
        try:
            # A filter may deny exit_group and rt_sigreturn: glibc's _exit then
            # faults, and a Python-level fault handler could never return.
            faulthandler.disable()
            for sig in (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS):
                signal.signal(sig, signal.SIG_DFL)
            built.load()
            for i, probe in enumerate(probes):
                shared[16 * i : 16 * i + 16] = struct.pack("qq", *probe())
            shared[16 * len(probes) : 16 * len(probes) + 16] = struct.pack("qq", 1, 1)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 20
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the confined child did not end")
        time.sleep(0.005)
    done = struct.unpack("qq", shared[16 * len(probes) : 16 * len(probes) + 16])
    assert done == (1, 1), "the child did not finish its probes"
    return [struct.unpack("qq", shared[16 * i : 16 * i + 16]) for i in range(len(probes))]
