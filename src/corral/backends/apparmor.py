"""AppArmor backend: an ABI 3.0 profile for ``apparmor_parser``.

AppArmor mediates paths, exec, capabilities and socket families; it cannot
filter system calls, socket options, or (before ABI 4) TCP ports, and says
so in its coverage. Deny rules are emitted as ``deny`` rules, which
AppArmor itself ranks above every allow.

Injection safety: every path was validated by ``policy.globs`` (no quotes,
no control characters, balanced braces) and is emitted inside double
quotes; names match ``[A-Za-z0-9][A-Za-z0-9._-]*``; the file name and
description are one line behind ``#`` (``escape.comment``). Nothing else
from the input reaches the text.
"""

from __future__ import annotations

from ..ir import ANY_PROTOCOL, IR, SIGNAL_CALLS, Access
from ..escape import comment
from ..policy import globs
from . import Coverage, Level, Output

_PERMS = ((Access.READ, "r"), (Access.WRITE, "w"), (Access.LINK, "l"), (Access.LOCK, "k"), (Access.MAP_EXEC, "m"))
#: Syscalls whose AppArmor mediation needs a rule of its own, or AppArmor
#: would deny what the policy allows.
_MEDIATED = {
    "signal,": tuple(sorted(SIGNAL_CALLS)),
    "ptrace,": ("ptrace", "process_vm_readv", "process_vm_writev"),
    "mount,": ("mount", "fsmount", "move_mount"),
    "umount,": ("umount2",),
    "pivot_root,": ("pivot_root",),
}


#: Measured in tests/vm (docs/differential.md): the profile's ``unix,`` rule
#: allows every unix socket operation, and Debian's 6.1 kernel does not
#: mediate connect() to a pathname socket by its path at all.
UNIX_NOTE = ("connect() to a pathname unix socket is not mediated by its path (the unix, rule allows every peer; kernels without"
             " AppArmor's af_unix mediation check only the socket family and type): a socket under a Deny'd or unlisted path connects")


def perms(access: Access) -> str:
    """AppArmor permission letters for an access set, in canonical order."""
    out = "".join(letter for flag, letter in _PERMS if flag in access)
    if Access.EXEC in access:
        out += "ix"
    return out


def _quote(path: str) -> str:
    return f'"{path}"'


def _with_directory(path: str) -> str:
    """A denied ``DIR/**`` denies DIR/ itself too, as under Landlock (which
    denies the whole node): the kernel's ``DIR/**`` does not match ``DIR/``,
    so listing DIR would stay allowed (measured by tests/vm)."""
    if path.endswith("/**"):
        return path[:-2] + "{,**}"
    return path


def _audit_lines(ir: IR) -> tuple[list[str], list[Coverage]]:
    """``audit ... w`` only where the audited path meets a writable one.

    Writes elsewhere are denied, and AppArmor logs every denial, so those
    are logged exactly too. An overlap corral cannot compute is approximate.
    """
    writable = [f for f in ir.files if not f.deny and Access.WRITE in f.access]
    lines: list[str] = []
    coverage: list[Coverage] = []
    for audit in ir.audits:
        level, note = Level.EXACT, "writes allowed here are audited; other writes are denied and logged"
        for rule in writable:
            if globs.covers(rule.path, audit.path):
                lines.append(f"  audit {_quote(audit.path)} w,")
            elif globs.covers(audit.path, rule.path):
                lines.append(f"  audit {_quote(rule.path)} w,")
            elif _may_overlap(rule.path, audit.path):
                level, note = Level.APPROX, f"overlap with writable {rule.path} cannot be computed; writes there are not audited"
        coverage.append(Coverage(audit, level, note))
    return sorted(set(lines)), coverage


def _may_overlap(a: str, b: str) -> bool:
    for x in globs.expand(a):
        for y in globs.expand(b):
            px, py = globs.literal_prefix(x), globs.literal_prefix(y)
            if px.startswith(py) or py.startswith(px):
                return True
    return False


def emit(ir: IR) -> Output:
    coverage: list[Coverage] = []
    body: list[str] = []

    caps = list(ir.capabilities)
    if caps:
        body.append("  # capabilities")
        body += [f"  {'deny ' if c.deny else ''}capability {c.name}," for c in caps]
        coverage += [Coverage(c, Level.EXACT) for c in caps]

    if ir.sockets:
        body.append("  # sockets")
        body += [f"  network {s.family} {s.type}," for s in ir.sockets]
        if any(s.family == "unix" for s in ir.sockets):
            body.append("  unix,")
    coverage += [
        Coverage(s, Level.APPROX, UNIX_NOTE) if s.family == "unix"
        else Coverage(s, Level.EXACT) if ANY_PROTOCOL in s.protocols
        else Coverage(s, Level.APPROX, f"network {s.family} {s.type} allows every protocol of the pair (MPTCP, SCTP, UDP-Lite included); seccomp limits the protocol")
        for s in ir.sockets
    ]

    allowed = {r.name for r in ir.syscalls if r.errno is None}
    mediated = [rule for rule, calls in _MEDIATED.items() if allowed.intersection(calls)]
    if "signal," in mediated and "processes" not in ir.lifted:
        # Signals stay inside the sandbox: this profile's processes may signal
        # each other; the outside may still signal (stop) them.
        at = mediated.index("signal,")
        mediated[at : at + 1] = [f"signal (send, receive) peer={ir.name},", "signal (receive) peer=unconfined,"]
    if mediated:
        body.append("  # operations AppArmor mediates beyond system calls")
        body += [f"  {rule}" for rule in mediated]

    allows = [f for f in ir.files if not f.deny]
    denies = [f for f in ir.files if f.deny]
    if allows:
        body.append("  # files")
        for f in allows:
            if f.transition:  # its own profile: px, named (validated as a profile name)
                body.append(f"  {_quote(f.path)} {perms(f.access).removesuffix('ix')}px -> {f.transition},")
            else:
                body.append(f"  {_quote(f.path)} {perms(f.access)},")
    if denies:
        body.append("  # denied files: deny rules win over every allow")
        body += [f"  deny {_quote(_with_directory(f.path))} rwlkmx," for f in denies]
    coverage += [Coverage(f, Level.EXACT) for f in ir.files]
    audit_lines, audit_cov = _audit_lines(ir)
    if audit_lines:
        body.append("  # writes logged to the audit log")
        body += audit_lines
    coverage += audit_cov

    coverage += [Coverage(p, Level.NONE, "AppArmor 3 network rules cannot name ports") for p in ir.ports]
    coverage += [Coverage(r, Level.NONE, "AppArmor cannot name hosts or see TLS: AppArmor 3 network rules name families, AppArmor 4's add addresses and ports, never DNS names") for r in ir.egress()]
    coverage += [Coverage(o, Level.NONE, "AppArmor cannot filter socket options") for o in ir.socket_options]
    coverage += [Coverage(s, Level.NONE, "AppArmor does not filter system calls") for s in ir.syscalls]

    header = [comment(f"AppArmor profile generated by corral from {ir.source}."), "# Edit the policy and recompile; do not edit this file."]
    if ir.description:
        header.append(comment(ir.description))
    text = "\n".join([*header, "", "abi <abi/3.0>,", "", f"profile {ir.name} {{", *body, "}", ""])
    return Output(text.encode(), tuple(coverage))


__all__ = ["emit", "perms"]
