"""Typed, located reading of one parsed TOML document.

A ``Reader`` pairs tomllib's data with the positions from ``locate`` and an
error collector. Validators ask it for a key's value as a given kind; a
wrong key, a wrong type or a bad item is recorded with its line and column
and reading carries on, so one run reports every error of a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MAX_ERRORS, DiagnosticCollector, InternalError, Span
from .items import NAME_RE, PORT_RE, ItemKind, Problem
from .locate import KeyPath, Locations, locate
from .model import Item
from .schema import KeySpec
from .suggest import did_you_mean, dotted

T = TypeVar("T")
_KIND_WORDS = {"bool": "true or false", "int": "an integer", "str": "a string", "strings": "a list of strings", "table": "a table", "map": "a table", "tables": "an array of tables ([[...]])"}


@dataclass
class Reader:
    """``trusted`` readers (the shipped catalogue, checked in full by the test
    suite) skip per-item checks and position finding until an error needs it."""

    file: str
    text: str
    data: dict[str, Any]
    errors: DiagnosticCollector
    trusted: bool = False
    _loc: Locations | None = None

    @property
    def loc(self) -> Locations:
        if self._loc is None:
            self._loc = locate(self.text)
        return self._loc

    # -- positions -------------------------------------------------------
    def span(self, path: KeyPath, *, key: bool = False, precise: bool = False) -> Span:
        if self.trusted and self._loc is None and not precise:
            return Span(self.file)  # trusted data: positions only when an error needs them
        line, col, length = self.loc.of_key(path) if key else self.loc.of_value(path)
        return Span(self.file, line, col, length)

    def error(self, path: KeyPath, code: str, message: str, hint: str = "", *, key: bool = False) -> None:
        self.errors.add(self.span(path, key=key, precise=True), code, message, hint)

    # -- structure -------------------------------------------------------
    def check_keys(self, path: KeyPath, table: dict[str, Any], allowed: tuple[KeySpec[Any], ...], where: str) -> None:
        """Report every key of ``table`` the schema does not list."""
        names = [k.name for k in allowed]
        for name in table:
            if name not in names:
                hint = did_you_mean(name, names) or f"{where} takes: {', '.join(names)}"
                self.error(path + (name,), "E002", f"unknown key '{name}' in {where}", hint, key=True)

    def typed(self, path: KeyPath, value: Any, key: KeySpec[Any]) -> bool:
        """Whether ``value`` has the kind the schema gives ``key``; report if not."""
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "table": isinstance(value, dict),
            "map": isinstance(value, dict),
            "tables": isinstance(value, list) and all(isinstance(v, dict) for v in value),
        }[key.shape]
        if not ok:
            found = type(value).__name__
            if isinstance(value, list):
                bad = next((v for v in value if not isinstance(v, str)), None)
                found = f"a list containing {type(bad).__name__} {bad!r}" if key.shape == "strings" else "a list"
            self.error(path, "E003", f"{dotted(path)} must be {_KIND_WORDS[key.shape]}, found {found}", f"for example: {_example(key)}")
        return ok

    # -- items -----------------------------------------------------------
    def items(self, path: KeyPath, values: list[str], kind: ItemKind[T]) -> list[Item[T]]:
        """Parse each string of a list as ``kind``; return the valid ones."""
        out: list[Item[T]] = []
        for i, value in enumerate(values):
            item = self.item(path + (i,), value, kind)
            if item is not None:
                out.append(item)
        return out

    def item(self, path: KeyPath, value: str, kind: ItemKind[T]) -> Item[T] | None:
        """One string parsed as ``kind``, or None after reporting why not."""
        parsed = self.parse(path, value, kind)
        if isinstance(parsed, Problem):
            return None
        return Item(value, self.span(path), parsed)

    def item_ok(self, path: KeyPath, value: str, kind: ItemKind[Any]) -> bool:
        """Whether ``value`` is a valid ``kind``; report it if not."""
        return not isinstance(self.parse(path, value, kind), Problem)

    def parse(self, path: KeyPath, value: str, kind: ItemKind[T]) -> T | Problem:
        if not isinstance(kind, ItemKind):  # fail closed: no kind, no checker, no value
            raise InternalError(f"{dotted(path)}: {kind!r} is not an item kind")
        parsed = kind.parse(value, trusted=self.trusted)
        if isinstance(parsed, Problem):
            self.report(path, parsed)
        return parsed

    def report(self, path: KeyPath, problem: Problem) -> None:
        hint = problem.hint
        if callable(hint):  # computed only while the error may still be shown
            hint = hint() if len(self.errors.diagnostics) < MAX_ERRORS else ""
        if problem.offset is None:
            self.error(path, problem.code, problem.message, hint)
            return
        line, col, length = self.loc.of_value(path)
        raw = self.text.splitlines()[line - 1][col - 1 : col - 1 + length] if line else ""
        self.errors.add(Span(self.file, line, col + _raw_offset(raw, problem.offset), 1), problem.code, problem.message, hint)


def _raw_offset(raw: str, offset: int) -> int:
    """Column offset, within a TOML string token, of decoded character ``offset``.

    Basic strings count an escape sequence as one decoded character, so the
    caret lands on the character the user wrote, escapes and all.
    """
    if not raw or raw[0] not in "\"'":
        return offset
    i, decoded = 1, 0
    while i < len(raw) and decoded < offset:
        if raw[0] == '"' and raw[i] == "\\":
            i += {"u": 6, "U": 10}.get(raw[i + 1 : i + 2], 2)
        else:
            i += 1
        decoded += 1
    return i


def _example(key: KeySpec[Any]) -> str:
    if key.shape == "bool":
        return f"{key.name} = false"
    if key.shape == "int":
        return f"{key.name} = 443"
    if key.shape == "str":
        return f'{key.name} = "..."'
    if key.shape == "strings":
        return f'{key.name} = ["...", "..."]'
    if key.shape == "map" and key.item is not None:
        return f"{key.name} = {{ {key.item.example} }}"
    if key.shape == "table":
        return f"[{key.name}]"
    return f"[[{key.name}]]"


__all__ = ["NAME_RE", "PORT_RE", "Reader", "did_you_mean", "dotted"]
