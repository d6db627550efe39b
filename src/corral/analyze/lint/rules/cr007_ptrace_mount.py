"""## What it does
Flags ptrace, mount, umount, remount and pivot_root permissions (as
AppArmor rules, or as the system calls of a corral policy).

## Why is this bad?
ptrace reads and rewrites other processes' memory; mount and pivot_root
rearrange the filesystem the other rules are written against.

## Example
```
ptrace (trace) peer=unconfined,
mount,
```

## Use instead
Drop them; a debugger or container runtime needs its own, separate
profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR007"
NAME = "ptrace-or-mount"
SEVERITY = "warning"
_KINDS = {"ptrace", "mount", "umount", "remount", "pivot_root"}


def check(view: View) -> Iterator[Finding]:
    for o in view.others:
        if o.deny or o.kind not in _KINDS:
            continue
        access = re.search(r"\(([^)]*)\)", o.text)
        if o.kind == "ptrace" and view.kind == "apparmor" and access and set(access.group(1).replace(",", " ").split()) <= {"read", "readby"}:
            continue  # ptrace (read/readby): reading /proc of a peer, not control
        yield Finding(o.span, f"{o.kind} is allowed: `{o.text}`", "remove it unless the program's job is debugging or mounting")
