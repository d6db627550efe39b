"""## What it does
Flags a bare `file,` rule, and write access to every path (`/** w`).

## Why is this bad?
It turns file mediation off: the rest of the profile's file rules no
longer restrict anything.

## Example
```
file,
/** rw,
```

## Use instead
List the directories the program reads and writes.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ._paths import covers

CODE = "CR004"
NAME = "broad-file-access"
SEVERITY = "error"


def check(view: View) -> Iterator[Finding]:
    for f in view.files:
        if f.deny or f.audit and f.perms == "w" and view.kind == "corral":
            continue
        if "w" in f.perms and covers(f.paths, "/etc/passwd") and covers(f.paths, "/usr/bin/x"):
            what = "`file,` grants every permission on every path" if f.path == "/**" and f.perms == "rwalkmx" else f"`{f.path}` is writable everywhere"
            yield Finding(f.span, what, "list the directories the program writes")
