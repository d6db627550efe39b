"""Escaping for every syntax corral writes: one helper per target syntax.

Strings that are not policy values (the policy file's path, a traced
command line, an audit event's field, an imported profile's name) reach
artifacts and generated policies in comments and strings. An attacker who
controls one of them must not be able to end a line: a newline in a file
name echoed into a header comment once produced an AppArmor ``alias``, a
systemd ``ExecStartPre=+`` and an nft ``flush ruleset``. Every consumer has
its own idea of a line break (YAML also ends lines at U+0085, U+2028 and
U+2029; Python's ``str.splitlines`` at U+001C-U+001E too), so these helpers
escape the union of them all, plus every other character that is not
printable (controls, bidirectional overrides, surrogates left by
undecodable bytes), as a visible backslash sequence.

* ``comment``: text after ``#`` in AppArmor, systemd, nftables, YAML, TOML
  and shell: one line whatever the input.
* ``toml_string``: a TOML basic string that ``tomllib`` reads back exactly.
* ``yaml_string``: a YAML double-quoted scalar that PyYAML reads back exactly.

A lone surrogate (an undecodable byte kept by ``os.fsdecode``) has no
representation in TOML or YAML: ``toml_string`` and ``yaml_string`` raise
``Unrepresentable`` so the caller can say so instead of writing U+FFFD.
In a comment it is shown as the byte it stands for (``\\xff``).
"""

from __future__ import annotations

import json
import unicodedata

#: Characters some consumer treats as the end of a line.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class Unrepresentable(ValueError):
    """The text holds a character the target syntax cannot carry."""


def is_safe_char(c: str) -> bool:
    """True for a character every consumer prints as itself on one line:
    printable, or an ordinary space (``Zs``); never a line break."""
    return c.isprintable() or unicodedata.category(c) == "Zs"


def one_line(text: str) -> bool:
    """True if ``text`` is one line of printable characters in every syntax."""
    return all(is_safe_char(c) for c in text)


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _code(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{n - 0xDC00:02x}"
    if n <= 0xFF:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def visible(text: str) -> str:
    """``text`` with backslashes doubled and every unsafe character shown as
    a backslash escape: one printable line, and the input can be read off it."""
    return "".join("\\\\" if c == "\\" else c if is_safe_char(c) else _code(c) for c in text)


def printable(text: str, limit: int = 0) -> str:
    """``text`` for a terminal: unsafe characters as escapes (an escape
    sequence in a value must not drive the terminal), backslashes kept as
    they are (messages quote globs); cut in the middle to ``limit``
    characters if given, so the end of a message (the reason) stays."""
    if limit and len(text) > limit:
        text = text[: limit // 2] + "\u2026" + text[len(text) - limit // 2 :]
    return "".join(c if is_safe_char(c) else _code(c) for c in text)


def comment(text: str) -> str:
    """A ``#`` comment line carrying ``text``, safe in every line syntax."""
    return f"# {visible(text)}" if text else "#"


_TOML_SHORT = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_YAML_SHORT = {**_TOML_SHORT, "\0": "\\0", "\a": "\\a", "\v": "\\v", "\x1b": "\\e"}


def _double_quoted(text: str, syntax: str, short: dict[str, str], raw_below: int) -> str:
    """``"..."`` with the escapes TOML and YAML share: short forms, then
    ``\\uXXXX`` / ``\\UXXXXXXXX`` for every character not kept raw."""
    out = []
    for c in text:
        n = ord(c)
        if 0xD800 <= n <= 0xDFFF:
            raise Unrepresentable(f"{visible(text)!r} holds {_code(c)}, which is not text (an undecodable byte): {syntax} cannot carry it")
        if c in short:
            out.append(short[c])
        elif is_safe_char(c) and n < raw_below:
            out.append(c)
        else:
            out.append(f"\\u{n:04X}" if n <= 0xFFFF else f"\\U{n:08X}")
    return '"' + "".join(out) + '"'


def toml_string(text: str) -> str:
    """A TOML basic string (``"..."``) that reads back as exactly ``text``."""
    return _double_quoted(text, "TOML", _TOML_SHORT, 0x110000)


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly ``text``
    (U+FEFF and beyond escaped: PyYAML refuses some of them raw)."""
    return _double_quoted(text, "YAML", _YAML_SHORT, 0xFEFF)


def yaml_scalar(value: object) -> str:
    """A JSON scalar as YAML: strings through ``yaml_string`` (``json.dumps``
    writes astral characters as surrogate pairs, which PyYAML reads back as
    two broken halves); numbers, booleans and null as JSON writes them."""
    return yaml_string(value) if isinstance(value, str) else json.dumps(value)


__all__ = ["LINE_BREAKS", "Unrepresentable", "comment", "is_safe_char", "one_line", "printable", "toml_string", "visible", "yaml_scalar", "yaml_string"]
