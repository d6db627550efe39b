"""Which flag to propose for a system call the policy refused, judged on
the call *with its arguments*.

A flag covers a call when it allows it outright, or when one of its
argument filters admits the arguments seen (``threads`` admits a
``clone`` without namespace flags; ``fd-ioctls`` admits ``FIONBIO``), or
when it answers it with an errno a library falls back from (``clone3``:
ENOSYS, then glibc uses ``clone``). Of the flags that cover it, the
narrowest wins: fewest system calls, never one that carries capabilities
or namespace calls while another covers the call, and one that grants only
calls before one that also grants paths or ports (``poll`` is ``stdio``'s,
not ``dns``'s). When only
such a flag covers it, the suggestion says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..ir import Alternative, ArgCmp
from ..policy import catalog
from ..policy.model import CmpOp, FlagDef

#: Calls that make or enter namespaces: a flag carrying them is escalating.
NAMESPACE_CALLS = frozenset({"unshare", "setns", "mount", "pivot_root", "chroot"})


@dataclass(frozen=True)
class Suggestion:
    """A flag (or None: list the call in Misc.Syscalls) and what it brings
    beyond the call that a reader must know before accepting it."""

    flag: FlagDef | None
    warning: str = ""


def _holds(cmp: ArgCmp, args: Sequence[int]) -> bool | None:
    """Whether one comparison holds on the arguments (None: not recorded)."""
    if cmp.arg >= len(args):
        return None
    value = args[cmp.arg] & 0xFFFFFFFFFFFFFFFF
    if cmp.op is CmpOp.MASKED_EQ:
        return value & cmp.mask == cmp.value
    if cmp.op is CmpOp.EQ:
        # seccomp compares ioctl requests and the like on their low 32 bits
        # when the rule's value fits in them (libseccomp's 32-bit args).
        return value == cmp.value or value & 0xFFFFFFFF == cmp.value
    ops = {CmpOp.NE: value != cmp.value, CmpOp.LT: value < cmp.value, CmpOp.LE: value <= cmp.value, CmpOp.GT: value > cmp.value, CmpOp.GE: value >= cmp.value}
    return ops[cmp.op]


def admits(alternative: Alternative, args: Sequence[int]) -> bool:
    """Whether every comparison of one alternative holds (unknown: no)."""
    return all(_holds(c, args) is True for c in alternative)


def covers(flag: FlagDef, name: str, args: Sequence[int] | None) -> bool:
    """Whether FLAG lets the call NAME(ARGS) through (or answers it with an
    errno a library falls back from). ``args`` None: any arguments."""
    if name in flag.syscalls or any(n == name for n, _ in flag.errno):
        return True
    for call, alternatives in flag.args:
        if call == name and (args is None or any(admits(alt, args) for alt in alternatives)):
            return True
    return False


def escalation(flag: FlagDef) -> str:
    """What a flag brings that is more than a call: capabilities, namespaces."""
    caps = [i.value for i in flag.list("Capabilities")]
    ns = sorted(NAMESPACE_CALLS & (set(flag.syscalls) | {n for n, _ in flag.args}))
    if flag.name == "namespaces":
        ns = sorted(set(ns) | {"clone/clone3 with namespace flags"})
    parts = []
    if caps:
        parts.append("capabilities " + ", ".join(caps))
    if ns:
        parts.append("namespace calls " + ", ".join(ns))
    return " and ".join(parts)


def _grants_more(flag: FlagDef) -> bool:
    """A flag that also grants paths, protocols or ports (dns brings the
    resolver's files and port 53): not the answer for a bare call."""
    return any(items for key, items in flag.lists if key != "Capabilities")


def _size(flag: FlagDef) -> int:
    return len(set(flag.syscalls) | {n for n, _ in flag.args} | {n for n, _ in flag.errno})


def suggest(name: str, args: Sequence[int] | None = None, flags: dict[str, FlagDef] | None = None) -> Suggestion:
    """The narrowest flag that covers NAME(ARGS), preferring flags that
    bring no capability and no namespace call; None if no flag covers it."""
    flags = flags if flags is not None else catalog.flags()
    covering = [f for f in flags.values() if f.builtin and f.category and covers(f, name, args)]
    if not covering:
        return Suggestion(None)
    covering.sort(key=lambda f: (bool(escalation(f)), _grants_more(f), f.category == "Misc", _size(f), f.name))
    best = covering[0]
    why = escalation(best)
    return Suggestion(best, f"it also brings {why}: review before accepting" if why else "")
