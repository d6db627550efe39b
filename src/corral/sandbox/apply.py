"""Apply a plan to the calling process: no_new_privs, capabilities,
Landlock, seccomp, then a self-check. Irreversible by design.

Order matters: capabilities are dropped and Landlock rules added while the
process may still make those calls; seccomp comes last because after it
only what the policy allows works (the final ``execve`` included).

Deny inside allow: Landlock only grants, beneath a directory. When a deny
path lies inside an allowed directory, the grant is split at run time: the
directory's entries are granted one by one, except the denied ones (and
recursively down to them). The allowed directory itself can then not be
listed or added to: narrower than the policy, never wider. ``grants``
computes the split on canonical paths and never follows a symlink.
"""

from __future__ import annotations

import errno
import os
import sys

from .._base import CorralError
from . import kernel

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing or dataclasses on the start-up path
    from typing import Any

#: Where the Landlock self-probe may look for a directory nothing grants.
_PROBE_DIRS = ("/", "/proc", "/etc", "/usr", "/var", "/sys", "/dev")


class SandboxError(CorralError):
    """The plan cannot be enforced as asked (R001), or the sandbox failed its
    own self-check (R002); ``hint`` says what to do."""

    code = "R001"

    def __init__(self, message: str, hint: str = "", *, code: str = "") -> None:
        super().__init__(message, code=code, hint=hint)

    def render(self, verb: str = "run", severity: str = "error") -> str:
        return super().render(verb, severity)


class Report:
    """What was (or would be) applied; ``--dry-run`` and ``-v`` print it."""

    def __init__(self, abi: int, best_effort: bool) -> None:
        self.abi = abi
        self.best_effort = best_effort
        self.not_enforced: list[str] = []
        self.rules: list[tuple[str, list[str]]] = []
        self.skipped: list[str] = []
        self.grants: list[tuple[str, list[str]]] | None = None
        self.narrowed: list[str] = []  # granted less than the policy says (never silent)
        #: Writable rule paths that do not exist: Landlock cannot grant a
        #: missing path, so the program cannot create it (run says so).
        self.missing_writable: list[str] = []


def check(plan: "dict[str, Any]", *, best_effort: bool) -> Report:
    """Fail closed: refuse when the kernel cannot enforce what the plan needs."""
    abi = kernel.landlock_abi()
    report = Report(abi, best_effort)
    unmet = [(need, what) for need, what in plan["requirements"] if need > abi]
    if unmet:
        have = f"Landlock ABI {abi}" if abi else "no Landlock (absent or disabled)"
        lines = "; ".join(f"{what} needs ABI {need}" for need, what in unmet)
        if not best_effort:
            raise SandboxError(f"this kernel has {have}: {lines}", "pass --best-effort to run anyway with what the kernel can enforce")
        report.not_enforced += [f"{what} (needs Landlock ABI {need}, kernel has {abi})" for need, what in unmet]
    _bounding_report(plan, report)
    if plan.get("unix") and abi < 9:
        report.not_enforced.append(
            f"connecting to pathname unix sockets: any socket the program can name (e.g. /run/docker.sock) connects;"
            f" Landlock limits it to Writable paths from ABI 9, this kernel has {abi or 'no Landlock'}"
        )
    if kernel.seccomp_mode() < 0:
        raise SandboxError("this kernel cannot install seccomp filters", "a kernel with CONFIG_SECCOMP_FILTER is needed")
    if plan["deny_unsupported"]:
        what = ", ".join(plan["deny_unsupported"])
        if not best_effort:
            raise SandboxError(
                f"Landlock cannot deny {what} inside an allowed directory, and this form of glob cannot be split around",
                "deny a directory (DIR/**), a file, or a pattern in one directory (DIR/*.key); or pass --best-effort",
            )
        report.not_enforced.append(f"deny {what} (inside an allowed directory)")
    if plan.get("egress") and plan["io_uring"]:
        raise SandboxError("the policy allows io_uring, whose connect and send bypass the egress supervisor", "remove io_uring_setup/io_uring_enter/io_uring_register from the policy (with or without Args), or its host names, Deny and ALPN")
    report.not_enforced += plan["unenforced_ports"]
    for kind, what, span, others in plan["unenforced"]:
        if kind == "FileRule":
            continue  # deny inside allow: split at apply time (see module docstring)
        report.not_enforced.append(f"{what} [{span}]" + (f" (only {others} can)" if others else ""))
    if abi:
        landlock_rules(plan, report)  # refuses links it cannot grant safely, before anything is applied
    return report


def landlock_rules(plan: "dict[str, Any]", report: Report) -> list[tuple[str, list[str]]]:
    """The (path, rights) rules to add: canonical, split around denies
    (see ``grants``); computed once, by ``check``."""
    if report.grants is None:
        from .grants import compute

        report.grants = compute(plan, report)
    return report.grants


def _open_path(path: str) -> int | None:
    """Open a canonical path without following any symlink: one that
    appeared since ``check`` resolved it is refused, not followed."""
    try:
        return kernel.open_no_symlinks(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SandboxError(f"{path} became a symlink while the sandbox was being set up") from None
        return None


def apply_landlock(plan: "dict[str, Any]", report: Report) -> None:
    abi = report.abi
    if abi == 0:
        return
    handled_fs = kernel.mask(plan["handled_fs"], kernel.FS_BITS, abi)
    handled_net = kernel.mask(plan["handled_net"], kernel.NET_BITS, abi)
    scoped = kernel.mask(plan["scoped"], kernel.SCOPE_BITS, abi)
    ruleset = kernel.landlock_create(handled_fs, handled_net, scoped, abi)
    try:
        for path, rights in landlock_rules(plan, report):
            fd = _open_path(path)
            if fd is None:
                report.skipped.append(f"{path}: does not exist")
                continue
            try:
                names = rights
                if not os.path.isdir(f"/proc/self/fd/{fd}"):
                    names = [r for r in rights if r in kernel.FILE_RIGHTS]
                allowed = kernel.mask(names, kernel.FS_BITS, abi) & handled_fs
                if allowed:
                    kernel.landlock_add_path(ruleset, fd, allowed)
                    report.rules.append((path, names))
            finally:
                os.close(fd)
        if handled_net:
            for right, port in plan["ports"]:
                allowed = kernel.mask([right], kernel.NET_BITS, abi) & handled_net
                if allowed:
                    kernel.landlock_add_port(ruleset, port, allowed)
        kernel.landlock_restrict(ruleset)
    finally:
        os.close(ruleset)


def _keep_mask(plan: "dict[str, Any]") -> int:
    keep = 0
    for cap in plan["caps"]:
        keep |= 1 << cap
    return keep


def _bounding_report(plan: "dict[str, Any]", report: Report) -> None:
    """Without CAP_SETPCAP the bounding set cannot shrink: the other sets
    are still cleared, and what stays is said. (An ordinary user holds no
    capability and under no_new_privs can gain none: nothing to say.)"""
    _, permitted, _ = kernel.capget()
    if permitted & (1 << 8) or (not permitted and os.geteuid() != 0):
        return
    keep = _keep_mask(plan)
    stays = [c for c in range(kernel.last_cap() + 1) if not keep & (1 << c) and kernel.in_bounding(c)]
    if stays:
        report.not_enforced.append(
            f"the capability bounding set: CAP_SETPCAP is missing, so {len(stays)} capabilities stay in it"
            " (effective, permitted, inheritable and ambient sets are still cleared; no_new_privs keeps exec from regaining any)"
        )


def drop_capabilities(plan: "dict[str, Any]") -> None:
    """Keep only the plan's capabilities, in every set (root) or simply
    clear the effective and permitted sets (an ordinary user has none)."""
    keep = _keep_mask(plan)
    kernel.clear_ambient()
    effective, permitted, _ = kernel.capget()
    if permitted & (1 << 8):  # CAP_SETPCAP: may shrink the bounding set
        for cap in range(kernel.last_cap() + 1):
            if not keep & (1 << cap) and kernel.in_bounding(cap):
                kernel.drop_bounding(cap)
    kept = permitted & keep
    kernel.capset(kept, kept, kept)
    for cap in plan["caps"]:
        if kept & (1 << cap) and os.geteuid() != 0:
            kernel.raise_ambient(cap)  # survive execve as a non-root user


def _probe_dir(report: Report) -> str | None:
    granted = [p for p, rights in report.rules if "read_dir" in rights]
    for candidate in _PROBE_DIRS:
        if not any(candidate == g or candidate.startswith(g.rstrip("/") + "/") for g in granted):
            return candidate
    return None


def check_landlock(report: Report) -> None:
    """Self-probe: a directory nothing grants must now answer EACCES."""
    probe = _probe_dir(report)
    if probe is None:
        return  # the policy lets the program read every probe directory
    try:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EACCES:
            return
        raise SandboxError(f"self-check failed: reading {probe} gave {exc.strerror}, not Landlock's EACCES", code="R002") from None
    os.close(fd)
    raise SandboxError(f"self-check failed: Landlock did not deny reading {probe}", code="R002")


def with_self_pid(bpf: bytes, offsets: "list[int]", pid: int) -> bytes:
    """The plan's filter with the program's own pid written where the plan
    left a placeholder: ``corral run`` execs in place, so the pid that
    applies the filter is the program's."""
    if not offsets:
        return bpf
    out = bytearray(bpf)
    k = pid.to_bytes(4, sys.byteorder)
    for at in offsets:
        out[at : at + 4] = k
    return bytes(out)


def check_seccomp() -> None:
    mode = kernel.seccomp_mode()
    if mode != 2 and mode != -errno.EPERM:
        raise SandboxError("self-check failed: no seccomp filter is active", code="R002")


def apply(plan: "dict[str, Any]", report: Report, *, seccomp: bool = True) -> None:
    """Confine the calling process according to ``plan``; raise SandboxError
    (before anything is half-applied where possible) if it cannot.
    ``seccomp=False`` leaves the filter to the caller (learning mode)."""
    try:
        kernel.set_no_new_privs()
        drop_capabilities(plan)
        if report.abi:
            apply_landlock(plan, report)
            check_landlock(report)
        if not kernel.no_new_privs():
            raise SandboxError("self-check failed: no_new_privs is not set", code="R002")
        if seccomp:
            kernel.seccomp_load(with_self_pid(plan["bpf"], plan["bpf_self"], os.getpid()))
    except kernel.KernelError as exc:
        raise SandboxError(f"could not apply the policy: {exc.strerror}") from None
    if seccomp:
        check_seccomp()
