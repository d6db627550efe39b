"""The shipped data: flag catalogue, capabilities, socket options, protocols.

Everything here is read from TOML files under ``corral/data`` once per
process and cached; nothing about a flag lives in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import DiagnosticCollector, InternalError, PolicyError

#: Shipped data files (package data, installed beside the code).
DATA = Path(__file__).resolve().parent.parent / "data"


def _load(name: str) -> dict[str, Any]:
    return tomllib.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SocketOption:
    name: str
    level_name: str
    level: int
    optname: int


@lru_cache(maxsize=1)
def socket_options() -> dict[str, SocketOption]:
    data = _load("socket_options.toml")
    levels: dict[str, int] = data.pop("levels")
    out: dict[str, SocketOption] = {}
    for level_name, options in data.items():
        for name, number in options.items():
            out[name] = SocketOption(name, level_name, levels[level_name], number)
    return out


@lru_cache(maxsize=1)
def ioctls() -> dict[str, int]:
    """ioctl request numbers by the name strace prints (``FIONBIO``)."""
    table: dict[str, int] = _load("ioctls.toml")["ioctls"]
    return table


@lru_cache(maxsize=1)
def capabilities() -> dict[str, dict[str, Any]]:
    caps: dict[str, dict[str, Any]] = _load("capabilities.toml")["capabilities"]
    return caps


#: socket(2)'s protocol argument may be anything (raw and packet sockets).
ANY_PROTOCOL = -1


@dataclass(frozen=True)
class Protocol:
    """A protocol a policy may name: its sockets, and which values of
    socket(2)'s protocol argument mean it, per family (``ANY_PROTOCOL``: any)."""

    name: str
    meaning: str
    sockets: tuple[tuple[str, str], ...]
    numbers: dict[str, tuple[int, ...]]
    #: Whether Landlock's TCP port rules see this protocol's sockets.
    landlock_ports: bool = True

    def numbers_for(self, family: str) -> tuple[int, ...]:
        return self.numbers.get(family, (ANY_PROTOCOL,))


@lru_cache(maxsize=1)
def protocol_tables() -> tuple[dict[str, Protocol], dict[str, int], dict[str, int]]:
    """Protocols by name, and the family and type numbers by name."""
    data = _load("protocols.toml")
    protos = {
        name: Protocol(
            name,
            p["meaning"],
            tuple((f, t) for f, t in p["sockets"]),
            {} if p["numbers"] == "any" else {f: tuple(n) for f, n in p["numbers"].items()},
            p.get("landlock_ports", True),
        )
        for name, p in data["protocols"].items()
    }
    return protos, data["families"], data["types"]


def protocols() -> dict[str, Protocol]:
    return protocol_tables()[0]


@lru_cache(maxsize=1)
def flags() -> dict[str, Any]:
    """The built-in flags, by name, as FlagDef (see policy.model).

    Loaded as trusted data: keys and types are checked on every load, item
    names (syscalls, paths, ...) by ``validate_flags`` in the test suite.
    """
    return _load_flags(trusted=True)


def validate_flags() -> dict[str, Any]:
    """Load the catalogue with every check a user's policy gets."""
    return _load_flags(trusted=False)


def _load_flags(trusted: bool) -> dict[str, Any]:
    from .flagdefs import parse_flag_table
    from .reader import Reader

    out: dict[str, Any] = {}
    collector = DiagnosticCollector()
    for entry in sorted((DATA / "flags").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        category = entry.name.removesuffix(".toml").capitalize()
        text = entry.read_text(encoding="utf-8")
        path = f"corral/data/flags/{entry.name}"
        collector.add_source(path, text)
        reader = Reader(path, text, tomllib.loads(text), collector, trusted=trusted)
        for name, table in reader.data.items():
            flag = parse_flag_table(reader, (name,), table, name=name, category=category, builtin=True)
            if flag is not None:
                out[name] = flag
    try:
        collector.raise_if_any()
    except PolicyError as exc:  # the shipped catalogue is ours: a bug, not user error
        raise InternalError(f"the shipped flag catalogue is invalid:\n{exc}") from exc
    return out


@lru_cache(maxsize=None)
def template_text(name: str) -> str | None:
    if name not in template_names():  # never a path: no '..', NUL or overlong name reaches the file system
        return None
    entry = DATA / "templates" / f"{name}.toml"
    return entry.read_text(encoding="utf-8") if entry.is_file() else None


def template_names() -> list[str]:
    return sorted(e.name.removesuffix(".toml") for e in (DATA / "templates").iterdir() if e.name.endswith(".toml"))
