"""## What it does
Flags write access to the kernel's control files: `/proc/sysrq-trigger`,
`/proc/kcore`, `/proc/sys/**`, `/sys/**`, `/proc/*/mem`, `/dev/mem`,
`/dev/kmem`.

## Why is this bad?
Writing there reconfigures or crashes the kernel, or reads its memory.

## Example
```
/proc/sys/** rw,
```

## Use instead
Read the one file the program needs (`/proc/sys/vm/overcommit_memory r,`).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ._paths import covers, touches

CODE = "CR008"
NAME = "kernel-interface-write"
SEVERITY = "error"
FILES = ("/proc/sysrq-trigger", "/proc/kcore", "/proc/1/mem", "/dev/mem", "/dev/kmem")
DIRECTORIES = ("/proc/sys/", "/sys/")


def check(view: View) -> Iterator[Finding]:
    for f in view.grants("w"):
        if f.path == "/**":
            continue  # CR004 reports writing everywhere
        hit = next((t for t in FILES if covers(f.paths, t)), None) or next((d + "..." for d in DIRECTORIES if touches(f.paths, d)), None)
        if hit:
            yield Finding(f.span, f"`{f.path}` can write kernel interface {hit}", "grant read access to the single file needed")
