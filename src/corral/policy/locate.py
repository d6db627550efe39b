"""Recover source positions for a TOML document that ``tomllib`` accepted.

``tomllib`` returns plain dicts with no positions, yet every error corral
reports must name the line and column. Rather than replace the standard
parser, we run this second, structure-only pass over the same text: it
walks tables, keys and array elements and records where each one starts.

Key paths are tuples: ``("Networking", "Flags")`` for a key,
``("Networking", "Flags", 2)`` for the third element of its array, and
``("Flag", 0, "Name")`` inside the first ``[[Flag]]`` table. Because
tomllib already validated the document, this pass may assume it is
well-formed; if it is ever confused, positions degrade to the nearest
known one instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

KeyPath = tuple[str | int, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass
class Locations:
    """Where keys and values start; (line, col, length), all 1-based."""

    keys: dict[KeyPath, tuple[int, int, int]] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int, int]] = field(default_factory=dict)

    def of_value(self, path: KeyPath) -> tuple[int, int, int]:
        """Position of a value, falling back to its key, then to its parents."""
        for p in _prefixes(path):
            if p in self.values:
                return self.values[p]
            if p in self.keys:
                return self.keys[p]
        return (1, 1, 1)

    def of_key(self, path: KeyPath) -> tuple[int, int, int]:
        """Position of a key (or table header), falling back to its parents."""
        for p in _prefixes(path):
            if p in self.keys:
                return self.keys[p]
        return (1, 1, 1)


def _prefixes(path: KeyPath) -> list[KeyPath]:
    return [path[:i] for i in range(len(path), 0, -1)]


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.col = 1
        self.loc = Locations()
        self.aot_len: dict[KeyPath, int] = {}
        #: Every key and header in document order, with what it was ("key",
        #: "table", "array"): what ``redefinition`` searches.
        self.order: list[tuple[KeyPath, tuple[int, int, int], str]] = []

    # -- low-level -------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.pos >= len(self.text):
                return
            if self.text[self.pos] == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
            self.pos += 1

    def skip_ws(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.advance()
            else:
                return

    def read_string(self) -> str:
        """Consume a string of any of TOML's four kinds; return its raw text."""
        start = self.pos
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                self.advance(3)
                while self.pos < len(self.text):
                    if quote[0] == '"' and self.peek() == "\\":
                        self.advance(2)
                        continue
                    if self.peek(3) == quote:
                        self.advance(3)
                        while self.peek() == quote[0]:  # up to two extra quotes
                            self.advance()
                        return self.text[start : self.pos]
                    self.advance()
                return self.text[start : self.pos]
        quote_char = self.peek()
        self.advance()
        while self.pos < len(self.text) and self.peek() != quote_char:
            if quote_char == '"' and self.peek() == "\\":
                self.advance()
            self.advance()
        self.advance()
        return self.text[start : self.pos]

    def read_key(self) -> list[tuple[str, tuple[int, int, int]]]:
        """Read a dotted key; return its parts with their positions."""
        parts: list[tuple[str, tuple[int, int, int]]] = []
        while True:
            self.skip_ws(False)
            line, col, start = self.line, self.col, self.pos
            c = self.peek()
            if c in "\"'":
                raw = self.read_string()
                name = _unquote(raw)
            else:
                while self.pos < len(self.text) and self.text[self.pos] in _BARE:
                    self.advance()
                name = self.text[start : self.pos]
            parts.append((name, (line, col, max(1, self.pos - start))))
            self.skip_ws(False)
            if self.peek() == ".":
                self.advance()
                continue
            return parts

    # -- structure -------------------------------------------------------
    def resolve_table(self, names: list[str]) -> KeyPath:
        """Turn ``[a.b]`` into a key path, entering arrays of tables."""
        path: KeyPath = ()
        for name in names:
            path = path + (name,)
            if path in self.aot_len:
                path = path + (self.aot_len[path] - 1,)
        return path

    def parse(self) -> Locations:
        prefix: KeyPath = ()
        while True:
            self.skip_ws(True)
            if self.pos >= len(self.text):
                return self.loc
            if self.peek(2) == "[[":
                self.advance(2)
                parts = self.read_key()
                names = [p for p, _ in parts]
                base = self.resolve_table(names[:-1]) + (names[-1],)
                index = self.aot_len.get(base, 0)
                self.aot_len[base] = index + 1
                prefix = base + (index,)
                self.loc.keys.setdefault(base, parts[-1][1])
                self.loc.keys[prefix] = parts[-1][1]
                self.order.append((base, parts[-1][1], "array"))
                self.advance(2)
            elif self.peek() == "[":
                self.advance()
                parts = self.read_key()
                prefix = self.resolve_table([p for p, _ in parts])
                self.loc.keys[prefix] = parts[-1][1]
                self.order.append((prefix, _whole(parts), "table"))
                self.advance()
            else:
                self.key_value(prefix)

    def key_value(self, prefix: KeyPath) -> None:
        parts = self.read_key()
        path = prefix + tuple(p for p, _ in parts)
        self.loc.keys[path] = parts[-1][1]
        self.order.append((path, _whole(parts), "key"))
        self.skip_ws(False)
        if self.peek() == "=":
            self.advance()
        self.skip_ws(False)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        line, col, start = self.line, self.col, self.pos
        c = self.peek()
        if c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_ws(True)
                if self.peek() in ("]", ""):
                    self.advance()
                    break
                self.value(path + (index,))
                index += 1
                self.skip_ws(True)
                if self.peek() == ",":
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip_ws(False)
                if self.peek() in ("}", ""):
                    self.advance()
                    break
                self.key_value(path)
                self.skip_ws(False)
                if self.peek() == ",":
                    self.advance()
        elif c in "\"'":
            self.read_string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()
        end = self.pos
        if self.text[start:end].count("\n"):
            end = self.text.index("\n", start)
        self.loc.values[path] = (line, col, max(1, len(self.text[start:end].rstrip())))


def _whole(parts: list[tuple[str, tuple[int, int, int]]]) -> tuple[int, int, int]:
    """The span of a dotted key from its first part to its last (on one line)."""
    (line, col, _), (last_line, last_col, last_len) = parts[0][1], parts[-1][1]
    return (line, col, last_col + last_len - col if last_line == line else parts[0][1][2])


def _unquote(raw: str) -> str:
    if raw.startswith("'"):
        return raw[1:-1]
    import json

    try:
        return str(json.loads(raw))
    except ValueError:
        return raw[1:-1]


def locate(text: str) -> Locations:
    """Positions of every key and value in a document tomllib accepted."""
    try:
        return _Scanner(text).parse()
    except (IndexError, ValueError):  # never let position-finding mask the real error
        return Locations()


def redefinition(text: str, line: int, col: int) -> tuple[tuple[int, int, int], tuple[int, int, int], str] | None:
    """Where a key or table that tomllib refused as defined twice was
    defined, second and first (``(line, col, length)`` each), and how they
    clash: "same", "implicit", "inside" or "array".

    tomllib reports the end of the offending statement (often past the end
    of its line) and never the first definition. The statement is the last
    key or header that starts before that point; its first definition is the
    earliest key or header with the same path ("same"), else the earliest
    that defined it implicitly ("implicit": ``A.b = 1`` before ``[A]``),
    else the earliest value or array of tables it reaches into ("inside":
    ``A = {...}`` before ``A.c = 1``), else the array of tables it names
    as a table ("array": ``[[A]]`` before ``[A]``).
    """
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    end = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    scanner = _Scanner(text[:end])
    try:
        scanner.parse()
    except (IndexError, ValueError):
        return None
    if len(scanner.order) < 2:
        return None
    path, second, last_kind = scanner.order[-1]
    earlier = scanner.order[:-1]
    tests: list[tuple[str, Callable[[KeyPath, str], bool]]] = [
        ("array", lambda p, kind: last_kind == "table" and kind == "array" and path[:-1] == p),
        ("same", lambda p, kind: p == path),
        ("implicit", lambda p, kind: p[: len(path)] == path),
        ("inside", lambda p, kind: kind == "key" and path[: len(p)] == p),
        ("array", lambda p, kind: kind == "array" and path[: len(p)] == p),
    ]
    for relation, test in tests:
        first = next((pos for p, pos, kind in earlier if test(p, kind)), None)
        if first is not None:
            return second, first, relation
    return None
