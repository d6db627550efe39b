"""## What it does
Flags rules the declared ABI cannot enforce: in an AppArmor profile,
rules that need a newer ABI than the one it declares (`userns`,
`io_uring`, `mqueue` need 4.0), or no `abi` line at all; in a corral
policy, a restriction that no backend at all can enforce (corral compiles
socket options to seccomp and ports to Landlock, so AppArmor's limits
there are covered, and reported by `corral compile`).

## Why is this bad?
The rule reads as a restriction but the kernel will not apply it: the
forum profile in corral's origin story "explicitly allowed" socket options
that AppArmor cannot even express.

## Example
```
abi <abi/3.0>,
profile x { userns, }
```

## Use instead
Declare the ABI the rules need, or enforce the rule with the mechanism
that can (corral compiles socket options to seccomp and ports to Landlock).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR010"
NAME = "abi-cannot-enforce"
SEVERITY = "warning"
_NEEDS_ABI_4 = {"userns", "io_uring", "mqueue"}


def check(view: View) -> Iterator[Finding]:
    if view.kind == "corral":
        for what, span, others in view.unenforceable:
            if not others:
                yield Finding(span, f"no backend can enforce: {what}", "drop the rule, or enforce it outside corral")
        return
    if not view.abi:
        yield Finding(view.span, f"profile '{view.name}' declares no ABI: the parser's default applies and may differ per machine", "add `abi <abi/3.0>,` at the top of the file")
    major = view.abi.split("/")[-1].split(".")[0] if view.abi else "0"
    for o in view.others:
        if o.kind in _NEEDS_ABI_4 and major.isdigit() and int(major) < 4:
            yield Finding(o.span, f"`{o.text}` needs ABI 4.0, the profile declares {view.abi or 'none'}", "declare abi <abi/4.0>")
