"""## What it does
Flags paths that are both writable and executable (W^X): a write rule and
an exec rule that match the same paths.

## Why is this bad?
A program that can write a file and then execute it can run any code it
downloads or is fed, which defeats the point of listing what it may run.
In a corral policy it is an error at `check` (E022) unless
`Filesystem.AllowWriteExec` names the path; this rule finds it in AppArmor
profiles, and reminds of it where a policy allowed it.

## Example
```
/srv/app/** rwix,
```

## Use instead
Keep code read-only and data non-executable:
```
/srv/app/bin/* rix,
/srv/app/data/** rw,
```
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ._paths import covers

CODE = "CR002"
NAME = "writable-and-executable"
SEVERITY = "warning"


def check(view: View) -> Iterator[Finding]:
    writable = view.grants("w")
    for x in view.grants("x"):
        for w in writable:
            if w is x or any(covers(w.paths, p.replace("*", "x")) for p in x.paths) or any(covers(x.paths, p.replace("*", "x")) for p in w.paths):
                yield Finding(x.span, f"`{x.path}` is executable and `{w.path}` makes it writable", "separate writable data from executable code")
                break
