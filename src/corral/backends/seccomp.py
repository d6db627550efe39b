"""seccomp backend: OCI/Docker JSON and raw BPF, both from the same rules.

The default action is ``SCMP_ACT_ERRNO`` with EPERM: a call the policy does
not allow fails, it does not kill the program. The BPF is built by
libseccomp (``corral._seccomp``), never by hand, with libseccomp's
binary-tree layout where available.

seccomp sees syscall numbers and register arguments only: it enforces the
syscall allow-list, socket families and types, and (level, option) pairs of
setsockopt exactly, and cannot see paths or the addresses behind pointers.

Calls limited to the caller itself (``guards``: prlimit64 and friends) keep
only their pid-0 form here: a compiled filter cannot know the program's
pid, which ``corral run`` writes into its own filter at exec time.
"""

from __future__ import annotations

import json
from typing import Any

from .. import _seccomp
from ..guards import resolve_self
from ..ir import IR, SELF_PID, ArgCmp, SyscallRule
from ..policy.model import CmpOp
from . import Coverage, Level, Output

_EPERM = 1


def coverage(ir: IR) -> tuple[Coverage, ...]:
    cov: list[Coverage] = []
    cov += [Coverage(f, Level.NONE, "seccomp cannot see paths") for f in ir.files]
    cov += [Coverage(a, Level.NONE, "seccomp cannot see paths") for a in ir.audits]
    cov += [Coverage(s, Level.EXACT) for s in ir.sockets]
    cov += [Coverage(p, Level.NONE, "the address is behind a pointer seccomp cannot read") for p in ir.ports]
    cov += [Coverage(r, Level.NONE, "the address is behind a pointer seccomp cannot read, and TLS is data") for r in ir.egress()]
    if ir.setsockopt_filtered:
        cov += [Coverage(o, Level.EXACT) for o in ir.socket_options]
    else:
        cov += [Coverage(o, Level.EXACT, "setsockopt is allowed outright by another rule") for o in ir.socket_options]
    for r in ir.syscalls:
        if any(c.value == SELF_PID for alt in r.alternatives for c in alt):
            cov.append(Coverage(r, Level.EXACT, "on the caller only: pid 0"))
        else:
            cov.append(Coverage(r, Level.EXACT))
    cov += [Coverage(c, Level.NONE, "capabilities are not system calls") for c in ir.capabilities]
    return tuple(cov)


def _entry(rule: SyscallRule, names: list[str], args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"names": names}
    if rule.errno is None:
        entry["action"] = "SCMP_ACT_ALLOW"
    else:
        entry["action"] = "SCMP_ACT_ERRNO"
        entry["errnoRet"] = rule.errno
    if args:
        entry["args"] = args
    if rule.origin:
        entry["comment"] = rule.origin
    return entry


def _arg(cmp: ArgCmp) -> dict[str, Any]:
    """One OCI LinuxSeccompArg; for masked_eq, value is the mask and valueTwo
    the expected result (omitted when 0, as Docker writes it)."""
    value, value_two = (cmp.mask, cmp.value) if cmp.op is CmpOp.MASKED_EQ else (cmp.value, 0)
    out: dict[str, Any] = {"index": cmp.arg, "value": value}
    if value_two:
        out["valueTwo"] = value_two
    out["op"] = cmp.op.oci
    return out


def to_oci(ir: IR) -> dict[str, Any]:
    """The policy as an OCI runtime-spec seccomp object (Docker's format)."""
    rules = resolve_self(ir.syscalls, None)  # an artifact cannot know the program's pid
    unconditional = [r.name for r in rules if not r.alternatives and r.errno is None]
    syscalls: list[dict[str, Any]] = []
    if unconditional:
        syscalls.append({"names": unconditional, "action": "SCMP_ACT_ALLOW"})
    for rule in rules:
        if rule.alternatives:
            for alt in rule.alternatives:
                args = [_arg(c) for c in alt]
                syscalls.append(_entry(rule, [rule.name], args))
        elif rule.errno is not None:
            syscalls.append(_entry(rule, [rule.name]))
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": _EPERM,
        "architectures": sorted(_seccomp.ARCHES.values()),
        "syscalls": syscalls,
    }


def emit(ir: IR) -> Output:
    text = json.dumps(to_oci(ir), indent=2) + "\n"
    return Output(text.encode(), coverage(ir))


def emit_bpf(ir: IR, arch: str | None = None) -> Output:
    """Raw BPF from libseccomp for ``arch`` (default: this machine's)."""
    built = _seccomp.build(ir.syscalls, arch)
    return Output(built.export_bpf(), coverage(ir), binary=True)


__all__ = ["coverage", "emit", "emit_bpf", "to_oci"]
