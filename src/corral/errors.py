"""Errors and diagnostics.

Two kinds of failure share one root, so the CLI can tell them apart::

    CorralError
     ├── PolicyError        the user's input is wrong (exit 2, no traceback);
     │                      carries one or more located Diagnostics
     ├── UnenforcedError    the selected targets leave a restriction unenforced
     ├── SandboxError       corral run cannot enforce the policy here (sandbox.apply)
     └── InternalError      a broken invariant in corral itself (a bug)

Every user-facing message has the same anatomy (see ``Diagnostic.render``):
``file:line:col: error[CODE]: message``, the source line with a caret, and a
one-line hint saying what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._base import CorralError

#: How many diagnostics one run reports before it says "... and N more".
MAX_ERRORS = 20
#: Characters of a message, and of a source line around the caret, shown.
MAX_MESSAGE, MAX_SNIPPET = 300, 120


@dataclass(frozen=True, order=True)
class Span:
    """Where something came from: a file and a 1-based line and column.

    ``line == 0`` means the position is unknown (for example a shipped
    template's own data); renderers then print only the file.
    """

    file: str
    line: int = 0
    col: int = 0
    length: int = 1

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


@dataclass(frozen=True)
class Diagnostic:
    """One located problem: the unit of every error and, later, lint finding."""

    span: Span
    code: str
    message: str
    hint: str = ""
    severity: str = "error"

    def render(self, source: str | None = None) -> str:
        """Render in the fixed anatomy; ``source`` is the file's text if known."""
        from .escape import printable

        lines = [f"{printable(str(self.span))}: {self.severity}[{self.code}]: {printable(self.message, MAX_MESSAGE)}"]
        if source is not None and self.span.line:
            src_lines = source.split("\n")  # TOML's lines: a U+2028 inside a string does not end one
            if 0 < self.span.line <= len(src_lines):
                text, col = _window(src_lines[self.span.line - 1].rstrip("\r"), self.span.col)
                gutter = str(self.span.line)
                pad = " " * len(gutter)
                caret = " " * (col - 1) + "^" * max(1, min(self.span.length, len(text) - col + 1))
                lines.append(f" {gutter} | {text}")
                lines.append(f" {pad} | {caret}")
        if self.hint:
            lines.append(f"  = hint: {printable(self.hint, MAX_MESSAGE)}")
        return "\n".join(lines)


def byte_span(file: str, data: bytes, offset: int) -> Span:
    """The line and column of byte ``offset`` of a file (columns count the
    characters before it on its line, as an editor does), so that an
    invalid byte or a NUL is located like any other error."""
    start = data.rfind(b"\n", 0, offset) + 1
    return Span(file, data.count(b"\n", 0, offset) + 1, len(data[start:offset].decode("utf-8", "replace")) + 1)


def text_position(message: str, text: str) -> tuple[str, int, int]:
    """tomllib's "(at line L, column C)" or "(at end of document)" taken out
    of a message: the message and the position in ``text`` (0, 0 when it
    names none)."""
    import re

    m = re.match(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", message, re.S)
    if m:
        return m["msg"], int(m["line"]), int(m["col"])
    if message.endswith(" (at end of document)"):
        lines = text.split("\n")
        return message.removesuffix(" (at end of document)"), len(lines), len(lines[-1]) + 1
    return message, 0, 0


def _window(line: str, col: int) -> tuple[str, int]:
    """At most ``MAX_SNIPPET`` characters of a source line around ``col``,
    printable, and the caret's column in it: a megabyte line is not echoed."""
    from .escape import printable

    start = max(0, min(col - 1 - MAX_SNIPPET // 2, len(line) - MAX_SNIPPET))
    end = start + MAX_SNIPPET
    head, body, tail = ("…" if start else ""), line[start:end], ("…" if end < len(line) else "")
    shown = printable(body[: col - 1 - start])
    return head + shown + printable(body[col - 1 - start :]) + tail, len(head) + len(shown) + 1


class PolicyError(CorralError, ValueError):
    """The input is invalid; holds every diagnostic found (capped)."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = diagnostics
        self.sources = sources or {}
        super().__init__(self.render())

    def render(self, verb: str = "", severity: str = "error") -> str:
        shown = self.diagnostics[:MAX_ERRORS]
        parts = [d.render(self.sources.get(d.span.file)) for d in shown]
        extra = len(self.diagnostics) - len(shown)
        if extra > 0:
            parts.append(f"... and {extra} more error{'s' if extra > 1 else ''}")
        return "\n".join(parts)


class UnenforcedError(CorralError):
    """Compiling would leave a restriction of the policy enforced by no target."""

    code = "C001"


class InternalError(CorralError):
    """A broken invariant inside corral: a bug to report, not a user mistake."""

    code = "X001"

    def render(self, verb: str = "", severity: str = "error") -> str:
        return f"corral: internal error[{self.code}] (please report it): {self.message}"


class DiagnosticCollector:
    """Collects diagnostics for one file so that a run reports all of them.

    Modelled on packaging's ``_ErrorCollector``: validators ``add`` and carry
    on; ``raise_if_any`` raises one ``PolicyError`` at the end.
    """

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, str] = {}

    def add(self, span: Span, code: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(span, code, message, hint))

    def add_source(self, path: str | Path, text: str) -> None:
        self.sources[str(path)] = text

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise PolicyError(sorted(self.diagnostics, key=lambda d: d.span), self.sources)
