"""The surface model: a policy as written, every value keeping its span.

This is what the loader produces and lowering consumes. Values are held per
``schema.KeySpec`` (not per string), each item with its typed value parsed
once by its kind and the span that wrote it, so that an error or a lint
finding can always point back at the line that said it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from ..errors import InternalError, Span
from .schema import CATEGORIES, FLAG_LIST_KEYS, POLICY_KEYS, KeySpec

T = TypeVar("T")


class CmpOp(enum.Enum):
    """A seccomp argument comparison: its policy name, symbol, OCI name and
    libseccomp name, in one place."""

    EQ = ("eq", "==", "SCMP_CMP_EQ", "EQ")
    NE = ("ne", "!=", "SCMP_CMP_NE", "NE")
    LT = ("lt", "<", "SCMP_CMP_LT", "LT")
    LE = ("le", "<=", "SCMP_CMP_LE", "LE")
    GT = ("gt", ">", "SCMP_CMP_GT", "GT")
    GE = ("ge", ">=", "SCMP_CMP_GE", "GE")
    MASKED_EQ = ("masked_eq", "&==", "SCMP_CMP_MASKED_EQ", "MASKED_EQ")

    def __init__(self, policy: str, symbol: str, oci: str, libseccomp: str) -> None:
        self.policy = policy
        self.symbol = symbol
        self.oci = oci
        self.libseccomp = libseccomp

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # "eq" == CmpOp.EQ would quietly be False
            raise TypeError(f"compare CmpOp with CmpOp, not with the string {other!r}")
        return self is other

    def __hash__(self) -> int:
        return hash(self.policy)

    @classmethod
    def named(cls, policy: str) -> "CmpOp | None":
        return next((op for op in cls if op.policy == policy), None)

    @classmethod
    def from_oci(cls, oci: str) -> "CmpOp | None":
        return next((op for op in cls if op.oci == oci), None)


#: seccomp comparison operators by their policy name.
ARG_OPS = tuple(op.policy for op in CmpOp)


@dataclass(frozen=True)
class Item(Generic[T]):
    """One value from a policy list: as written, where, and parsed by its kind."""

    value: str
    span: Span
    parsed: T = cast(Any, None)


@dataclass(frozen=True)
class ArgCmp:
    """One comparison of a syscall argument: ``args[arg] OP value``.

    For ``masked_eq`` the test is ``args[arg] & mask == value``.
    """

    arg: int
    op: CmpOp
    value: int
    mask: int = 0

    def __str__(self) -> str:
        if self.op is CmpOp.MASKED_EQ:
            return f"arg{self.arg} & {self.mask:#x} == {self.value:#x}"
        if self.value == -2:  # ir.SELF_PID
            return f"arg{self.arg} {self.op.symbol} own pid"
        return f"arg{self.arg} {self.op.symbol} {self.value:#x}"


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
    lists: tuple[tuple[str, tuple[Item[Any], ...]], ...] = ()
    notes: str = ""
    builtin: bool = True

    def list(self, key: str) -> tuple[Item[Any], ...]:
        """A path/protocol/port/option list of the flag, by its key; a key
        flags do not have is a bug (never an empty list)."""
        if key not in FLAG_LIST_KEYS:
            raise InternalError(f"flags have no list key {key!r}; they have {', '.join(FLAG_LIST_KEYS)}")
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


_KNOWN = frozenset(POLICY_KEYS)


def _known(spec: KeySpec[Any]) -> None:
    if not isinstance(spec, KeySpec) or spec not in _KNOWN:
        raise InternalError(f"{spec!r} is not a key of the policy language (schema.POLICY_KEYS)")


@dataclass
class Policy:
    """A loaded policy: its own values plus everything it extends, merged.

    ``values`` maps each ``KeySpec`` (for example ``schema.FS_WRITABLE``)
    to the items from this file and every file it extends, in order;
    ``settings`` holds the boolean keys (a file's own setting beats its
    parents').
    """

    name: str
    description: str
    path: str
    span: Span
    values: dict[KeySpec[Any], list[Item[Any]]] = field(default_factory=dict)
    flags: dict[str, FlagDef] = field(default_factory=dict)
    extends: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    tests: list[TestCase] = field(default_factory=list)
    settings: dict[KeySpec[bool], bool] = field(default_factory=dict)

    def get(self, spec: KeySpec[T]) -> list[Item[T]]:
        """The items of one key; anything but a key of the language is an error."""
        _known(spec)
        return self.values.get(spec, [])

    def add(self, spec: KeySpec[T], items: list[Item[T]]) -> None:
        _known(spec)
        self.values.setdefault(spec, []).extend(items)

    def setting(self, spec: KeySpec[bool], default: bool) -> bool:
        _known(spec)
        return self.settings.get(spec, default)


__all__ = ["ARG_OPS", "CATEGORIES", "Alternative", "ArgCmp", "CmpOp", "FlagDef", "Item", "Policy", "TestCase"]
