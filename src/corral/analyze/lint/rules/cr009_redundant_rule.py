"""## What it does
Flags rules that change nothing: a `deny` of paths or capabilities that
nothing grants in a self-contained policy or profile, and rules written
twice.

A deny in a corral policy that extends a template or a file, or uses a
flag, is not flagged: it holds whatever a later version of the template or
flag grants, which is what it is there for. (AppArmor profiles are judged
with their includes as installed on this host.)

## Why is this bad?
They make a profile look tighter than it is (a reviewer reads "deny
capability sys_admin" and assumes it mattered) and hide real changes in
noise.

## Example
```
deny capability sys_module,   # nothing grants it
/etc/hosts r,
/etc/hosts r,
```

## Use instead
Remove them; an empty policy already denies everything not granted.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ._paths import covers

CODE = "CR009"
NAME = "redundant-rule"
SEVERITY = "info"


def check(view: View) -> Iterator[Finding]:
    yield from _unneeded_denies(view)
    seen: dict[tuple[str, str, bool, bool], object] = {}
    for f in view.files:
        key = (f.path, f.perms, f.deny, f.owner)
        if key in seen and f.span.file == view.source:
            yield Finding(f.span, f"`{f.path} {f.perms}` is written twice (first at {seen[key]})", "remove the repeat")
        seen.setdefault(key, f.span)


def _unneeded_denies(view: View) -> Iterator[Finding]:
    if view.widened_by:
        return  # each deny guards against a widening of what the view builds on
    granted_caps = {c.name for c in view.caps if not c.deny}
    for c in view.caps:
        if c.deny and c.name not in granted_caps and "ALL" not in granted_caps:
            yield Finding(c.span, f"`deny capability {c.name}` denies what nothing grants", "remove it: ungranted capabilities are denied already")
    allows = [f for f in view.files if not f.deny and not f.audit]
    for d in view.files:
        if d.deny and not any(covers(a.paths, p.replace("**", "x").replace("*", "x")) or covers(d.paths, a.path.replace("**", "x").replace("*", "x")) for a in allows for p in d.paths):
            yield Finding(d.span, f"`deny {d.path}` denies what nothing grants", "remove it, or keep it as documentation of intent")
