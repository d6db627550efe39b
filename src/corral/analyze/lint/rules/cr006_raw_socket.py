"""## What it does
Flags raw and packet sockets (`network raw`, `network packet`, the `raw`
and `packet` protocols). Netlink's raw type (talking to the kernel) is not
an IP socket and is not flagged.

## Why is this bad?
Raw sockets let a program forge any packet and sniff traffic; with
`net_raw` they bypass the port and address rules the rest of the policy
states.

## Example
```
network inet raw,
```

## Use instead
Use ordinary TCP/UDP sockets; for ping, the unprivileged ICMP socket
(`network inet dgram` with the `icmp` protocol).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR006"
NAME = "raw-socket"
SEVERITY = "warning"


def check(view: View) -> Iterator[Finding]:
    for n in view.nets:
        if not n.deny and n.family != "netlink" and (n.type == "raw" or n.family == "packet"):
            yield Finding(n.span, f"raw socket: {n.family or 'any family'} {n.type or 'any type'}", "use stream or datagram sockets")
