"""## What it does
Flags capabilities that amount to root or to leaving confinement:
sys_admin, sys_module, sys_ptrace, sys_rawio, dac_override,
dac_read_search, setuid, setpcap, net_admin, mac_admin, mac_override,
bpf, perfmon, sys_boot, audit_control, setfcap, and `capability,` (all).

## Why is this bad?
Each of them lets a process bypass the very checks a profile relies on
(file permissions, other processes' memory, loading kernel code).

## Example
```
capability sys_admin,
```

## Use instead
Grant the narrow capability the program needs (for example
`net_bind_service` to listen on port 80), or none.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View
from ....policy import catalog

CODE = "CR003"
NAME = "dangerous-capability"
SEVERITY = "warning"


def check(view: View) -> Iterator[Finding]:
    caps = catalog.capabilities()
    for c in view.caps:
        if c.deny:
            continue
        if c.name == "ALL":
            yield Finding(c.span, "every capability is granted (`capability,`)", "list the capabilities the program needs")
        elif caps.get(c.name, {}).get("danger"):
            yield Finding(c.span, f"capability {c.name}: {caps[c.name]['meaning']}", "drop it, or confine the one operation that needs it")
