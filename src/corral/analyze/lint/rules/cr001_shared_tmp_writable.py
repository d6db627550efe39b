"""## What it does
Flags write access to the shared, world-writable temporary directories
(`/tmp`, `/var/tmp`, `/dev/shm`), including globs that cover them
(`/**`, `/{tmp,var}/**`).

## Why is this bad?
Every program on the host can read and plant files there. A compromised
process gets a staging area for tools and scripts; other processes can
race it with symlinks. The forum thread in corral's origin story found
exactly this (`/tmp/** rw`) in a profile that called itself tight.

## Example
```
/tmp/** rw,
```

## Use instead
A private runtime directory, created for the service alone
(systemd `RuntimeDirectory=agent`):
```
/run/agent/{,**} rwk,
```
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ._paths import SHARED_TMP, covers, touches

CODE = "CR001"
NAME = "shared-tmp-writable"
SEVERITY = "error"


def check(view: View) -> Iterator[Finding]:
    for f in view.grants("w") + view.grants("a"):
        hit = next((t for t in SHARED_TMP if touches(f.paths, t)), None)
        if hit and not any(d.deny and covers(d.paths, hit + "x") and covers(d.paths, p.replace("*", "x")) for d in view.files for p in f.paths):
            where = hit.rstrip("/")
            yield Finding(f.span, f"`{f.path}` makes the shared {where} writable", "use a private runtime directory such as /run/NAME/** (systemd RuntimeDirectory=)")
