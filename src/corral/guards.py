"""Guards: call forms every filter refuses, whatever else a policy allows.

A policy that allows ``ioctl`` outright must still not let the program push
keystrokes into the terminal it came from (TIOCSTI); one that allows
``sendto`` must not let it open TCP connections with MSG_FASTOPEN, where
Landlock's connect rule does not look; one that allows ``prlimit64`` must
not let it change another process. The guards are data
(``data/guards.toml``); lowering applies them to the allowed syscall rules
so that every seccomp target (``corral run``, OCI JSON, BPF, Kubernetes)
gets them, and a policy lifts one only by naming its flag.

Refused forms compare the low 32 bits of arguments the kernel reads as an
int: ``ioctl(fd, (1 << 32) | TIOCSTI)`` is TIOCSTI to the kernel and to
the guard alike. seccomp can only allow a conjunction of comparisons per
rule, so "anything but these forms" is written as their complement: a set
of ``masked_eq`` alternatives over the tested bits (``complement``).
"""

from __future__ import annotations

import errno as errno_mod
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .ir import SELF_PID, SyscallRule
from .policy.model import Alternative, ArgCmp, CmpOp

#: One bit of one argument: (arg index, bit number).
_Var = tuple[int, int]


@dataclass(frozen=True)
class Guard:
    """One guard: refused forms, self-only calls, and the flag that lifts it."""

    name: str
    meaning: str
    lifted_by: str
    #: (syscall, forms): a call matching any form is refused.
    refuse: tuple[tuple[str, tuple[Alternative, ...]], ...]
    #: (syscall, forms): the call is allowed only in one of these forms.
    only: tuple[tuple[str, tuple[Alternative, ...]], ...]
    #: The Landlock scope that keeps the guard in ``corral run`` ("" for none).
    scope: str = ""


@lru_cache(maxsize=1)
def guards() -> dict[str, Guard]:
    data = tomllib.loads((Path(__file__).resolve().parent / "data" / "guards.toml").read_text(encoding="utf-8"))
    out: dict[str, Guard] = {}
    for name, table in data.items():
        refuse: dict[str, list[Alternative]] = {}
        for form in table.get("Refuse", []):
            refuse.setdefault(form["syscall"], []).append(tuple(ArgCmp(t["arg"], CmpOp.MASKED_EQ, t["value"], t["mask"]) for t in form["tests"]))
        only: dict[str, list[Alternative]] = {}
        for form in table.get("Self", []):
            also = tuple(ArgCmp(t["arg"], CmpOp.EQ, t["value"]) for t in form.get("with", []))
            # pid 0 only: a filter is inherited, and "the program's own pid"
            # names whoever the kernel hands it to once the program's first
            # process is gone while a child of it still runs
            only[form["syscall"]] = [(*also, ArgCmp(form["arg"], CmpOp.EQ, 0))]
        out[name] = Guard(
            name,
            table["Meaning"],
            table.get("LiftedBy", ""),
            tuple((k, tuple(v)) for k, v in refuse.items()),
            tuple((k, tuple(v)) for k, v in only.items()),
            table.get("Scope", ""),
        )
    return out


def scopes(lifted: tuple[str, ...]) -> list[str]:
    """The Landlock scopes of the guards a policy keeps."""
    return [g.scope for g in guards().values() if g.scope and g.name not in lifted]


def lifting_flags() -> dict[str, str]:
    """Flag name -> the guard it lifts."""
    return {g.lifted_by: g.name for g in guards().values() if g.lifted_by}


def _bits(form: Alternative) -> dict[_Var, int]:
    out: dict[_Var, int] = {}
    for c in form:
        for bit in range(64):
            if c.mask >> bit & 1:
                out[(c.arg, bit)] = c.value >> bit & 1
    return out


def complement(forms: tuple[Alternative, ...]) -> tuple[Alternative, ...]:
    """Alternatives that hold exactly when no form (of ``masked_eq`` tests) holds.

    Shannon expansion over the tested bits, highest bit first: a branch no
    form can match any more is one alternative, a branch a form fully
    matches is dropped. TIOCSTI and TIOCLINUX (which share 28 upper bits)
    give 34 alternatives; a two-argument form gives at most 64.
    """
    out: list[dict[_Var, int]] = []

    def expand(left: list[dict[_Var, int]], fixed: dict[_Var, int]) -> None:
        if any(not f for f in left):
            return
        if not left:
            out.append(fixed)
            return
        var = min((v for f in left for v in f), key=lambda v: (v[0], -v[1]))
        for b in (0, 1):
            expand([{k: x for k, x in f.items() if k != var} for f in left if f.get(var, b) == b], {**fixed, var: b})

    expand([_bits(f) for f in forms], {})
    alternatives = []
    for fixed in out:
        per_arg: dict[int, tuple[int, int]] = {}
        for (arg, bit), b in fixed.items():
            mask, value = per_arg.get(arg, (0, 0))
            per_arg[arg] = (mask | 1 << bit, value | b << bit)
        alternatives.append(tuple(ArgCmp(arg, CmpOp.MASKED_EQ, v, m) for arg, (m, v) in sorted(per_arg.items())))
    return tuple(alternatives)


def _conj(a: Alternative, b: Alternative) -> Alternative | None:
    """Both alternatives at once, as one comparison per argument (all
    libseccomp accepts), or None when they cannot both hold.

    An ``eq`` decides a ``masked_eq`` (absorbs or contradicts it); two
    ``masked_eq`` merge into one. Any other pair on one argument cannot be
    written as one comparison and the combination is dropped: narrower than
    the policy, never wider.
    """
    by_arg: dict[int, ArgCmp] = {}
    for c in (*a, *b):
        d = by_arg.get(c.arg)
        if d is None or d == c:
            by_arg[c.arg] = c
            continue
        if SELF_PID in (c.value, d.value):
            return None
        if d.op == CmpOp.MASKED_EQ and c.op == CmpOp.EQ:
            d, c = c, d
        if d.op == CmpOp.EQ and c.op == CmpOp.MASKED_EQ:
            if d.value & c.mask != c.value:
                return None
            by_arg[c.arg] = d  # the eq decides it
        elif d.op == c.op == CmpOp.MASKED_EQ:
            if (d.value ^ c.value) & d.mask & c.mask:
                return None
            by_arg[c.arg] = ArgCmp(c.arg, CmpOp.MASKED_EQ, d.value | c.value, d.mask | c.mask)
        elif d.op == c.op == CmpOp.EQ:
            if d.value != c.value:
                return None
        else:
            return None
    return tuple(by_arg[arg] for arg in sorted(by_arg))


def restrict(rule: SyscallRule, allowed: tuple[Alternative, ...], guard: str = "") -> SyscallRule | None:
    """``rule`` narrowed to calls that also match one of ``allowed``; None if
    nothing is left. ``guard`` names the guard, recorded when the rule was
    allowed outright (it stays "outright but for the guard")."""
    if not rule.alternatives:
        alternatives = allowed
    else:
        combos = (_conj(a, b) for a in rule.alternatives for b in allowed)
        alternatives = tuple(dict.fromkeys(c for c in combos if c is not None))
    if not alternatives:
        return None
    narrowed = (*rule.narrowed_by, guard) if guard and rule.outright else rule.narrowed_by
    return SyscallRule(rule.name, alternatives, rule.errno, rule.origin, rule.span, narrowed)


def apply(rules: dict[str, SyscallRule], flags: set[str]) -> tuple[list[SyscallRule], list[str]]:
    """Narrow ``rules`` in place by every guard ``flags`` does not lift.

    Returns the refusals (errno rules for the refused forms, which learning
    mode adds to its filter: there an unmatched call is asked about, not
    refused) and the names of the lifted guards.
    """
    refusals: list[SyscallRule] = []
    lifted: list[str] = []
    eperm = errno_mod.EPERM
    for guard in guards().values():
        if guard.lifted_by and guard.lifted_by in flags:
            lifted.append(guard.name)
            continue
        origin = f"guard {guard.name}"
        for name, forms in guard.refuse:
            refusals.append(SyscallRule(name, forms, eperm, origin))
            if name in rules and rules[name].errno is None:
                narrowed = restrict(rules[name], complement(forms), guard.name)
                if narrowed is None:
                    del rules[name]
                else:
                    rules[name] = narrowed
        for name, forms in guard.only:
            refusals.append(SyscallRule(name, _outside(forms), eperm, origin))
            if name in rules and rules[name].errno is None:
                narrowed = restrict(rules[name], forms, guard.name)
                if narrowed is None:
                    del rules[name]
                else:
                    rules[name] = narrowed
    return refusals, lifted


def _outside(forms: tuple[Alternative, ...]) -> tuple[Alternative, ...]:
    """The calls none of the self forms allows, for learning mode: the pid
    is not 0, or a ``with`` test fails."""
    pid_arg = forms[0][-1].arg
    also = forms[0][:-1]
    out: list[Alternative] = [(ArgCmp(pid_arg, CmpOp.NE, 0),)]
    out += [(ArgCmp(c.arg, CmpOp.NE, c.value),) for c in also]
    return tuple(out)


def resolve_self(rules: tuple[SyscallRule, ...], pid: int | None) -> tuple[SyscallRule, ...]:
    """Rules with ``SELF_PID`` replaced by ``pid``; with None (a compiled
    artifact, which cannot know the pid) the own-pid forms are dropped and
    only the pid-0 forms stay."""
    out: list[SyscallRule] = []
    for rule in rules:
        if not any(c.value == SELF_PID for alt in rule.alternatives for c in alt):
            out.append(rule)
            continue
        alternatives: list[Alternative] = []
        for alt in rule.alternatives:
            has_self = any(c.value == SELF_PID for c in alt)
            if pid is not None:
                alternatives.append(tuple(ArgCmp(c.arg, c.op, pid if c.value == SELF_PID else c.value, c.mask) for c in alt))
            elif not has_self:
                alternatives.append(alt)
            elif all(c.op == CmpOp.NE for c in alt if c.value == SELF_PID):
                alternatives.append(tuple(c for c in alt if c.value != SELF_PID))
        if alternatives:
            out.append(SyscallRule(rule.name, tuple(alternatives), rule.errno, rule.origin, rule.span, rule.narrowed_by))
    return tuple(out)


def describe() -> list[dict[str, Any]]:
    """The guards for documentation and ``corral explain``."""
    return [{"name": g.name, "meaning": g.meaning, "lifted_by": g.lifted_by} for g in guards().values()]


__all__ = ["Guard", "apply", "complement", "describe", "guards", "lifting_flags", "resolve_self", "restrict", "scopes"]
