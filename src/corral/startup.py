"""Whether any program can start under a policy at all.

A seccomp filter that refuses the calls every process makes on its way in
and out leaves nothing to run: the C runtime cannot set up thread-local
storage (arch_prctl on x86-64) and no process can exit (exit_group, exit).
The proposal's example is such a policy; `corral check` says so instead of
letting `corral run` end in a segmentation fault with no explanation.
"""

from __future__ import annotations

from .errors import Diagnostic, Span
from .ir import IR

#: Groups of system calls of which a starting program needs at least one:
#: (calls, why). The stdio flag (and so Extends = ["base"]) grants them all.
NEEDED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("exit_group", "exit"), "every process ends with exit_group or exit"),
    (("arch_prctl",), "the C runtime sets up thread-local storage with arch_prctl (x86-64)"),
    (("rt_sigreturn",), "returning from any signal handler needs rt_sigreturn"),
)


def missing(ir: IR) -> list[str]:
    """The reasons no program can start under IR's seccomp filter; empty if it can."""
    allowed = {r.name for r in ir.syscalls if r.errno is None}
    return [f"{' or '.join(calls)}: {why}" for calls, why in NEEDED if not allowed.intersection(calls)]


def warning(ir: IR, path: str) -> Diagnostic | None:
    """The check-time warning (C007) for a policy no program can start under."""
    reasons = missing(ir)
    if not reasons:
        return None
    return Diagnostic(
        Span(path), "C007",
        f"no program can start under this policy's system call filter (corral run, seccomp, systemd, docker): it allows none of {'; '.join(reasons)}",
        'add the stdio flag to [Runtime], or Extends = ["base"]', severity="warning")
