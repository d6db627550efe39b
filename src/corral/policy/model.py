"""The surface model: a policy as written, every value keeping its span.

This is what the loader produces and lowering consumes. It is deliberately
close to the TOML (keys are ``"Section.Key"`` strings) so that an error or
a lint finding can always point back at the line that said it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Span

#: The categories of the proposal, in the order they are printed.
CATEGORIES = ("Networking", "Filesystem", "Runtime", "User", "Misc")

#: seccomp comparison operators by their policy name.
ARG_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "masked_eq")


@dataclass(frozen=True)
class Item:
    """One string value from a policy list, with where it was written."""

    value: str
    span: Span


@dataclass(frozen=True)
class ArgCmp:
    """One comparison of a syscall argument: ``args[arg] OP value``.

    For ``masked_eq`` the test is ``args[arg] & mask == value``.
    """

    arg: int
    op: str
    value: int
    mask: int = 0

    def __str__(self) -> str:
        if self.op == "masked_eq":
            return f"arg{self.arg} & {self.mask:#x} == {self.value:#x}"
        sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[self.op]
        return f"arg{self.arg} {sym} {self.value:#x}"


#: A syscall allowed when all comparisons of one alternative hold.
Alternative = tuple[ArgCmp, ...]


@dataclass(frozen=True)
class FlagDef:
    """A named bundle of permissions: from the catalogue or a ``[[Flag]]``.

    Paths, protocols and ports are ``Item``s so that an error in a
    user-defined flag still points at its line.
    """

    name: str
    description: str
    category: str | None
    span: Span
    syscalls: tuple[str, ...] = ()
    args: tuple[tuple[str, tuple[Alternative, ...]], ...] = ()
    errno: tuple[tuple[str, str], ...] = ()
    lists: tuple[tuple[str, tuple[Item, ...]], ...] = ()
    notes: str = ""
    builtin: bool = True

    def list(self, key: str) -> tuple[Item, ...]:
        """A path/protocol/port/option list of the flag, by its key."""
        return dict(self.lists).get(key, ())


@dataclass(frozen=True)
class TestCase:
    """One [[Test]]: a probe with parameters, or a command; and the expectation."""

    name: str
    expect: str  # "allow" | "deny"
    span: Span
    probe: str = ""
    params: tuple[tuple[str, str | int], ...] = ()
    run: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.name:
            return self.name
        if self.run:
            return " ".join(self.run)
        return " ".join([self.probe, *(str(v) for _, v in self.params)])


@dataclass
class Policy:
    """A loaded policy: its own values plus everything it extends, merged.

    ``values`` maps ``"Section.Key"`` (for example ``"Filesystem.Writable"``)
    to the items from this file and every file it extends, in order.
    """

    name: str
    description: str
    path: str
    span: Span
    values: dict[str, list[Item]] = field(default_factory=dict)
    flags: dict[str, FlagDef] = field(default_factory=dict)
    extends: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    tests: list[TestCase] = field(default_factory=list)
    #: Boolean settings by "Section.Key"; a file's own setting beats its parents'.
    settings: dict[str, bool] = field(default_factory=dict)

    def get(self, key: str) -> list[Item]:
        return self.values.get(key, [])
