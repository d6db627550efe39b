"""`corral diff OLD NEW`: the permission delta between two policies, two
profiles, or a policy and a profile. Exit 1 when NEW grants anything OLD
did not: a CI gate against silent widening.

Widening is judged by meaning, not text: a path NEW adds is no widening if
an OLD glob already covered it; a deny NEW drops is widening unless a NEW
deny still covers it; an argument filter NEW drops is widening. An
AppArmor profile filters no system call, so as NEW against a corral policy
it widens to every system call, and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..policy import globs
from .view import View

ALL_CALLS = "<every system call>"


@dataclass
class Delta:
    added: dict[str, list[str]] = field(default_factory=dict)  # widening
    removed: dict[str, list[str]] = field(default_factory=dict)  # narrowing

    @property
    def widens(self) -> bool:
        return any(self.added.values())

    def to_json(self) -> str:
        return json.dumps({"widens": self.widens, "added": self.added, "removed": self.removed}, indent=2)

    def text(self, old: str, new: str) -> str:
        lines = [f"--- {old}", f"+++ {new}"]
        for kind in sorted(set(self.added) | set(self.removed)):
            lines += [f"+ {kind}: {item}" for item in self.added.get(kind, [])]
            lines += [f"- {kind}: {item}" for item in self.removed.get(kind, [])]
        if len(lines) == 2:
            lines.append("  no permission changed")
        lines.append("NEW grants more than OLD" if self.widens else "NEW grants nothing OLD did not")
        return "\n".join(lines)


def _covered(path: str, perm: str, grants: list[tuple[str, str]]) -> bool:
    for g, p in grants:
        if perm in p and globs.covers(g, path):
            return True
    return False


def _files(view: View) -> tuple[list[tuple[str, str]], list[str]]:
    allow = [(p, f.perms) for f in view.files if not f.deny and not (f.audit and view.kind == "corral") for p in f.paths]
    deny = [p for f in view.files if f.deny for p in f.paths]
    return allow, deny


def _calls(view: View) -> dict[str, bool]:
    """System call -> argument-filtered; an AppArmor profile allows every call."""
    if view.kind == "apparmor":
        return {ALL_CALLS: False}
    return {n: n in view.filtered for n in view.syscalls}


def diff(old: View, new: View) -> Delta:
    d = Delta()

    def both_ways(kind: str, before: set[str], after: set[str], *, widening: bool = True) -> None:
        """Items only in NEW are added (widening unless told otherwise), only in OLD removed."""
        if widening:
            for item in sorted(after - before):
                put(d.added, kind, item)
        for item in sorted(before - after):
            put(d.removed, kind, item)

    def put(side: dict[str, list[str]], kind: str, item: str) -> None:
        side.setdefault(kind, [])
        if item not in side[kind]:
            side[kind].append(item)

    old_allow, old_deny = _files(old)
    new_allow, new_deny = _files(new)
    for path, perms in new_allow:
        for perm in perms:
            if not _covered(path, perm, old_allow) or any(globs.covers(dn, path) for dn in old_deny if not any(globs.covers(nd, path) for nd in new_deny)):
                put(d.added, "files", f"{path} {perm}")
    for path, perms in old_allow:
        for perm in perms:
            if not _covered(path, perm, new_allow):
                put(d.removed, "files", f"{path} {perm}")
    for dn in old_deny:
        if not any(globs.covers(nd, dn) for nd in new_deny):
            put(d.added, "files", f"deny {dn} dropped")
    for nd in new_deny:
        if not any(globs.covers(od, nd) for od in old_deny):
            put(d.removed, "files", f"deny {nd} added")

    def caps(v: View) -> set[str]:
        return {c.name for c in v.caps if not c.deny}

    both_ways("capabilities", caps(old), caps(new))

    def nets(v: View) -> set[str]:
        return {f"{n.family or 'any'} {n.type or 'any'}" for n in v.nets if not n.deny}

    old_nets, new_nets = nets(old), nets(new)
    for n in sorted(new_nets - old_nets):
        if not (("any any" in old_nets) or f"{n.split()[0]} any" in old_nets):
            put(d.added, "network", n)
    for n in sorted(old_nets - new_nets):
        put(d.removed, "network", n)
    if new.inbound and not old.inbound:
        put(d.added, "network", "inbound connections")

    old_calls, new_calls = _calls(old), _calls(new)
    if ALL_CALLS not in old_calls:
        for name, filtered in sorted(new_calls.items()):
            if name not in old_calls:
                put(d.added, "system calls", name)
            elif old_calls[name] and not filtered:
                put(d.added, "system calls", f"{name}: argument filter dropped")
    for name, filtered in sorted(old_calls.items()):
        if name not in new_calls and ALL_CALLS not in new_calls:
            put(d.removed, "system calls", name)
        elif name in new_calls and filtered is False and new_calls[name] is True:
            put(d.removed, "system calls", f"{name}: argument filter added")

    if old.kind == new.kind == "corral":
        old_any_option = "setsockopt" in old.syscalls and "setsockopt" not in old.filtered  # OLD set any option already
        both_ways("socket options", {o for o, _ in old.socket_options}, {o for o, _ in new.socket_options}, widening=not old_any_option)
        both_ways("ports", {f"tcp {dr} {p or '*'}" for dr, p, _ in old.ports}, {f"tcp {dr} {p or '*'}" for dr, p, _ in new.ports})

    if old.kind == "corral" and new.kind == "apparmor":
        if old.ports:
            put(d.added, "ports", "any TCP port (AppArmor 3 rules name no ports)")
        if old.socket_options:
            put(d.added, "socket options", "any socket option (AppArmor cannot filter them)")

    def others(v: View) -> set[str]:
        return {o.kind for o in v.others if not o.deny}

    both_ways("other", others(old), others(new))
    return d
