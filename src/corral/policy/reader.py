"""Typed, located reading of one parsed TOML document.

A ``Reader`` pairs tomllib's data with the positions from ``locate`` and an
error collector. Validators ask it for a key's value as a given kind; a
wrong key, a wrong type or a bad item is recorded with its line and column
and reading carries on, so one run reports every error of a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import DiagnosticCollector, Span
from . import catalog, globs
from .locate import KeyPath, Locations, locate
from .model import Item
from .schema import Key

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PORT_RE = re.compile(r"(?P<proto>tcp|udp):(?:(?P<addr>[0-9.]+(?:/\d{1,2})?|\[[0-9A-Fa-f:.]+(?:/\d{1,3})?\]):)?(?P<port>\*|\d{1,5}(?:-\d{1,5})?)")
_KIND_WORDS = {"bool": "true or false", "int": "an integer", "str": "a string", "strings": "a list of strings", "table": "a table", "tables": "an array of tables ([[...]])"}


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """'did you mean 'x'?' for the closest option, or '' if none is close."""
    import difflib  # only on the error path: it costs ~10 ms to import

    opts = list(options)
    lowered = {o.lower(): o for o in opts}
    if word.lower() in lowered:
        return f"did you mean '{lowered[word.lower()]}'? (names are case-sensitive)"
    close = difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def dotted(path: KeyPath) -> str:
    """``("Flag", 0, "Name")`` -> ``Flag[0].Name`` for messages."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


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
    def check_keys(self, path: KeyPath, table: dict[str, Any], allowed: tuple[Key, ...], where: str) -> None:
        """Report every key of ``table`` the schema does not list."""
        names = [k.name for k in allowed]
        for name in table:
            if name not in names:
                hint = did_you_mean(name, names) or f"{where} takes: {', '.join(names)}"
                self.error(path + (name,), "E002", f"unknown key '{name}' in {where}", hint, key=True)

    def typed(self, path: KeyPath, value: Any, key: Key) -> bool:
        """Whether ``value`` has the kind the schema gives ``key``; report if not."""
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
            "table": isinstance(value, dict),
            "tables": isinstance(value, list) and all(isinstance(v, dict) for v in value),
        }[key.kind]
        if not ok:
            found = type(value).__name__
            if isinstance(value, list):
                bad = next((v for v in value if not isinstance(v, str)), None)
                found = f"a list containing {type(bad).__name__} {bad!r}" if key.kind == "strings" else "a list"
            self.error(path, "E003", f"{dotted(path)} must be {_KIND_WORDS[key.kind]}, found {found}", f"for example: {_example(key)}")
        return ok

    # -- items -----------------------------------------------------------
    def items(self, path: KeyPath, values: list[str], kind: str) -> list[Item]:
        """Validate each string of a list as ``kind``; return the valid ones."""
        out: list[Item] = []
        for i, value in enumerate(values):
            item_path = path + (i,)
            if self.item_ok(item_path, value, kind):
                out.append(Item(value, self.span(item_path)))
        return out

    def item_ok(self, path: KeyPath, value: str, kind: str) -> bool:
        if self.trusted:
            return True
        check = getattr(self, f"_check_{kind}", None)
        if check is None:
            return True
        message_hint: tuple[str, str, str] | None = check(path, value)
        if message_hint is None:
            return True
        code, message, hint = message_hint
        if code:  # an empty code means the check reported a more precise span itself
            self.error(path, code, message, hint)
        return False

    def _check_syscall(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        from .. import _seccomp

        if _seccomp.is_known(value):
            return None
        return ("E005", f"unknown system call '{value}'", did_you_mean(value, _seccomp.known_names()) or "system calls use their Linux names, as in syscalls(2)")

    def _check_capability(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        caps = catalog.capabilities()
        if value in caps:
            return None
        bare = value.lower().removeprefix("cap_")
        hint = f"did you mean '{bare}'? (lower case, without CAP_)" if bare in caps else did_you_mean(value, caps)
        return ("E006", f"unknown capability '{value}'", hint or "see capabilities(7); write net_raw for CAP_NET_RAW")

    def _check_sockopt(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        opts = catalog.socket_options()
        if value in opts:
            return None
        return ("E007", f"unknown socket option '{value}'", did_you_mean(value.lower(), opts) or "socket options by their lower-case names: tcp_nodelay, so_keepalive, ip_tos, ipv6_v6only, ...")

    def _check_protocol(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        protos = catalog.protocols()
        if value in protos:
            return None
        return ("E013", f"unknown protocol '{value}'", did_you_mean(value, protos) or f"one of: {', '.join(protos)}")

    def _check_port(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        m = PORT_RE.fullmatch(value)
        if m is None:
            return ("E009", f"invalid port '{value}'", "write tcp:443, tcp:8000-8080, tcp:* for any port, udp:53, or with a peer: tcp:203.0.113.5:443, tcp:10.0.0.0/8:5432, tcp:[2001:db8::1]:443")
        addr = m.group("addr")
        if addr:
            import ipaddress

            try:
                ipaddress.ip_network(addr.strip("[]"), strict=False)
            except ValueError:
                return ("E009", f"invalid address in '{value}'", "an IPv4 or [IPv6] address, optionally with a /prefix")
        spec = m.group("port")
        if spec != "*":
            low, _, high = spec.partition("-")
            lo, hi = int(low), int(high or low)
            if not (1 <= lo <= hi <= 65535):
                return ("E009", f"port out of range in '{value}'", "ports run from 1 to 65535, and a range from low to high")
            if hi - lo >= 1024:
                return ("E009", f"port range '{value}' spans more than 1024 ports", "Landlock needs one rule per port; use tcp:* to allow any port")
        return None

    def _check_path(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        try:
            globs.validate(value)
        except globs.GlobError as exc:
            line, col, length = self.loc.of_value(path)
            raw = self.text.splitlines()[line - 1][col - 1 : col - 1 + length] if line else ""
            self.errors.add(Span(self.file, line, col + _raw_offset(raw, exc.offset), 1), "E008", f"invalid path {value!r}: {exc.message}", exc.hint)
            return ("", "", "")  # already reported with a precise column
        return None

    def _check_name(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        if NAME_RE.fullmatch(value):
            return None
        return ("E011", f"invalid name {value!r}", "a name is letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters")

    def _check_text(self, path: KeyPath, value: str) -> tuple[str, str, str] | None:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            return ("E011", "text must be one line of printable characters", "remove newlines and control characters")
        return None


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


def _example(key: Key) -> str:
    if key.kind == "bool":
        return f"{key.name} = false"
    if key.kind == "int":
        return f"{key.name} = 443"
    if key.kind == "str":
        return f'{key.name} = "..."'
    if key.kind == "strings":
        return f'{key.name} = ["...", "..."]'
    if key.kind == "table":
        return f"[{key.name}]"
    return f"[[{key.name}]]"
