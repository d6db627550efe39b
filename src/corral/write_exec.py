"""W^X: no path is both writable and executable unless the policy says so.

A program that can write a file it may also execute can run any code it
downloads or is fed, which defeats the point of listing what it may run.
So a Writable path (from any key or flag) whose glob can match a path that
Exec or ExecProfiles makes executable is an error (E022) at ``check``, and
so in ``compile`` and ``run``, which lower the same way. Overlap is decided
on the globs (``globs.intersects``): ``Writable = ["/srv/app/**"]`` and
``Exec = ["/srv/app/bin/*"]`` overlap although neither string contains the
other; a literal directory counts as everything beneath it, which is what
Landlock grants for it.

A policy that means it says so, narrowly, in ``Filesystem.AllowWriteExec``:
an overlap is allowed when one of those globs covers the executable path
or the writable one (``globs.covers``: equal, a literal path it matches, or
a ``PREFIX/**`` over it). ``corral explain`` lists what was allowed that way.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import Diagnostic, PolicyError
from .ir import Access, FileRule
from .policy import globs
from .policy.model import Item


def reaching(writable: str, executable: str) -> bool:
    """Whether the writable glob can match a path the executable glob names."""
    return writable == executable or globs.intersects(writable, executable)


def check(files: Sequence[FileRule], allowed: Sequence[Item[str]], sources: dict[str, str]) -> tuple[str, ...]:
    """The executable paths the policy lets be writable too (through
    ``allowed``, the items of Filesystem.AllowWriteExec); raises PolicyError
    naming every other executable path a writable rule can reach."""
    # a literal directory last: a glob that names the path reads better in the message
    writable = sorted((f for f in files if not f.deny and Access.WRITE in f.access), key=lambda f: f.path.endswith("/"))
    waived: list[str] = []
    errors: list[Diagnostic] = []
    for x in files:
        if x.deny or Access.EXEC not in x.access:
            continue
        w = next((w for w in writable if w is x or reaching(w.path, x.path)), None)
        if w is None:
            continue
        if any(globs.covers(a.value, x.path) or globs.covers(a.value, w.path) for a in allowed):
            waived.append(x.path)
            continue
        both = f"({x.origin}) is made both executable and writable" if w is x else f"is executable ({x.origin}) and `{w.path}` ({w.origin}, {w.span}) makes it writable"
        errors.append(Diagnostic(
            x.span, "E022", f"`{x.path}` {both}: a program that can write what it runs can run anything (W^X)",
            f'keep code read-only and data non-executable; if it is meant, say so: AllowWriteExec = ["{x.path}"] in [Filesystem]',
        ))  # fmt: skip
    if errors:
        raise PolicyError(sorted(errors, key=lambda d: (d.span.file, d.span.line, d.span.col)), sources)
    return tuple(sorted(set(waived)))
