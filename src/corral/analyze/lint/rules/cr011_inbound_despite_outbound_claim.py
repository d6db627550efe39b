"""## What it does
Flags network rules that grant inbound connections (bind, listen,
accept) in a profile whose name, description or comments say it is
outbound-only ("outbound", "outgoing", "client", "egress").

## Why is this bad?
AppArmor 3 network rules have no direction: `network inet tcp,` allows a
program to listen as well as connect. A profile that claims "outbound
only" while allowing a listener misleads its reviewers, as in the forum
thread corral grew from.

## Example
```
# allow only outbound tcp (for HTTP/2)
network inet tcp,
```

## Use instead
Say what the rule does, and enforce the direction where it can be: corral
compiles `Connect` ports to Landlock, which allows connecting and not
binding, and leaves out bind/listen/accept unless the `incoming` flag is
given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import Finding
from ...view import View

CODE = "CR011"
NAME = "inbound-despite-outbound-claim"
SEVERITY = "warning"
_CLAIM = re.compile(r"\b(outbound|outgoing|egress|client[- ]only|only\s+(?:talk|connect)s?)\b", re.I)


def check(view: View) -> Iterator[Finding]:
    claims = [(view.name, view.span)] + [(view.description, view.span)] + view.comments
    found = next(((m.group(0), span) for text, span in claims if text and (m := _CLAIM.search(text))), None)
    if found is None:
        return
    word, where = found
    for why, span in view.inbound:
        yield Finding(span, f"inbound connections are allowed although {where} says {word!r}: {why}", "drop bind/listen/accept, or correct the claim")
