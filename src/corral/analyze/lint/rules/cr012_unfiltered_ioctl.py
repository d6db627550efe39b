"""## What it does
Flags `ioctl` allowed whatever its request (in `Misc.Syscalls` or a flag
without an `Args` filter), which is what `corral run --log` suggests for a
program that touched a terminal or a device once.

## Why is this bad?
ioctl is thousands of operations behind one system call: terminal
requests, device control, filesystem and network configuration. corral
refuses TIOCSTI and TIOCLINUX (typing into the terminal you came from)
whatever the policy says, but every other request is open, and Landlock
mediates ioctl on devices only from ABI 5.

## Example
```
[Misc]
Syscalls = ["ioctl"]
```

## Use instead
The flag that filters the requests the program needs: `fd-ioctls`
(non-blocking, close-on-exec, bytes readable, is-a-terminal), `tty`
(terminal modes and window size), or a `[[Flag]]` with
`Args = { ioctl = [[{ arg = 1, in = [...] }]] }`.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR012"
NAME = "unfiltered-ioctl"
SEVERITY = "warning"


def check(view: View) -> Iterator[Finding]:
    if "ioctl" in view.syscalls and "ioctl" not in view.filtered:
        yield Finding(view.syscalls["ioctl"], "ioctl is allowed whatever its request", "use the fd-ioctls or tty flag, or an Args filter listing the requests")
