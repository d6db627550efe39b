"""## What it does
Flags exec rules that leave confinement: `ux`, `Ux`, `pux`, `PUx`, `cux`,
`CUx`, and `change_profile -> unconfined`.

## Why is this bad?
The executed program runs without any profile: everything this profile
restricts is one `execve` away.

## Example
```
/usr/bin/helper Ux,
```

## Use instead
Inherit the profile (`ix`) or give the helper its own profile (`Px`).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR005"
NAME = "unconfined-exec"
SEVERITY = "error"


def check(view: View) -> Iterator[Finding]:
    for f in view.files:
        if not f.deny and f.exec_mode and ("u" in f.exec_mode.lower()):
            yield Finding(f.span, f"`{f.path}` is executed unconfined ({f.exec_mode})", "use ix (inherit) or Px (its own profile)")
    for o in view.others:
        if o.kind == "change_profile" and not o.deny and ("unconfined" in o.text or "->" not in o.text):
            yield Finding(o.span, f"`{o.text}` can leave confinement", "name the profiles it may change to, never unconfined")
