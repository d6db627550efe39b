"""The policy language's keys: the one table everything else walks.

Each ``KeySpec`` row names a key, the shape of its value (``str``,
``strings``, ``bool``, ``int``, ``table``, ``tables``, ``map``), the item
kind its strings are parsed as (an object from ``items``) and one line
saying what it means. The loader reads keys by walking these rows, lowering
(``lower.HANDLERS``) maps every row of ``POLICY_KEYS`` to a handler, and the
JSON Schema and docs/policy-language.md are rendered from them. A key
that is not a row here does not exist.

Code names keys by the constants below (``schema.FS_WRITABLE``), never by a
string: a typo is an ``AttributeError`` (and a mypy error), not an empty
list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import items as K
from .items import ItemKind

T = TypeVar("T")

#: The categories of the proposal, in the order they are printed.
CATEGORIES = ("Networking", "Filesystem", "Runtime", "User", "Misc")

SHAPES = ("str", "strings", "bool", "int", "table", "tables", "map")


@dataclass(frozen=True)
class KeySpec(Generic[T]):
    """One key: where it lives, what it takes, what it means."""

    section: str  # a category, "" for the top level, "Flag" or "Test"
    key: str
    shape: str
    item: ItemKind[T] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            from ..errors import InternalError

            raise InternalError(f"key {self.key}: unknown shape {self.shape!r}")

    @property
    def name(self) -> str:
        return self.key

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key

    def __str__(self) -> str:
        return self.dotted


def _flags(section: str) -> tuple[KeySpec[str], KeySpec[str]]:
    return (
        KeySpec(section, "Flags", "strings", K.FLAG, "flags (named bundles of permissions) this policy allows"),
        KeySpec(section, "DenyFlags", "strings", K.FLAG, "flags whose every permission is denied, whatever else allows it"),
    )


#: Flags and DenyFlags of each category.
FLAGS: dict[str, KeySpec[str]] = {}
DENY_FLAGS: dict[str, KeySpec[str]] = {}
for _section in CATEGORIES:
    FLAGS[_section], DENY_FLAGS[_section] = _flags(_section)

#: Path lists, each with the file access it grants (see ir.PATH_ACCESS).
PATH_KEYS: dict[str, str] = {
    "ReadOnly": "read",
    "Writable": "read, write, create, delete, lock and hard-link (a link grants no more than its target)",
    "Exec": "read and execute (the program runs under the same policy)",
    "Libraries": "read and map as executable code (shared libraries)",
}

NET_PROTOCOLS = KeySpec("Networking", "Protocols", "strings", K.PROTOCOL, "protocols sockets may use: tcp, udp, icmp, icmp-raw, raw, unix, netlink, packet, mptcp, udplite, sctp")
NET_CONNECT = KeySpec("Networking", "Connect", "strings", K.PEER, "ports the program may connect to: tcp:443, tcp:8000-8080, tcp:*, udp:53, or with a peer tcp:203.0.113.5:443, tcp:[2001:db8::1]:443, tcp:api.example.com:443, tcp:*.example.com:443 (* is one or more labels)")
NET_DENY = KeySpec("Networking", "Deny", "strings", K.PEER, "peers the program may never connect to, whatever else allows them: tcp:10.0.0.0/8:*, tcp:*.internal.example.com:*")
NET_ALPN = KeySpec("Networking", "ALPN", "strings", K.ALPN, "TLS application protocols (RFC 7301 IDs: h2, http/1.1): every TLS connection to a named peer must offer one of them (with ALPNOnly, none but them)")
NET_ALPN_ONLY: KeySpec[bool] = KeySpec("Networking", "ALPNOnly", "bool", None, "whether TLS connections to named peers must offer ALPN's protocols and no other (default false: one of them, among any others)")
#: Bool keys that refine another key and mean nothing without it: the
#: loader refuses them set to true alone (E023), never a silent no-op.
NEEDS: dict[KeySpec[bool], KeySpec[Any]] = {NET_ALPN_ONLY: NET_ALPN}
NET_BIND = KeySpec("Networking", "Bind", "strings", K.PORT, "ports the program may listen on, as tcp:PORT, tcp:LOW-HIGH, tcp:* or udp:PORT")
NET_SOCKET_OPTIONS = KeySpec("Networking", "SocketOptions", "strings", K.SOCKOPT, "socket options the program may set, by name (tcp_nodelay, so_keepalive, ...)")
FS_READ_ONLY = KeySpec("Filesystem", "ReadOnly", "strings", K.PATH, f"paths the program may {PATH_KEYS['ReadOnly']}")
FS_WRITABLE = KeySpec("Filesystem", "Writable", "strings", K.PATH, f"paths the program may {PATH_KEYS['Writable']}")
FS_EXEC = KeySpec("Filesystem", "Exec", "strings", K.PATH, f"paths the program may {PATH_KEYS['Exec']}")
FS_LIBRARIES = KeySpec("Filesystem", "Libraries", "strings", K.PATH, f"paths the program may {PATH_KEYS['Libraries']}")
FS_EXEC_PROFILES = KeySpec("Filesystem", "ExecProfiles", "map", K.EXEC_PROFILE, 'programs that run under an AppArmor profile of their own: { "/usr/bin/helper" = "helper" }')
FS_DENY = KeySpec("Filesystem", "Deny", "strings", K.PATH, "paths the program may not touch at all, whatever else allows them")
FS_ALLOW_WRITE_EXEC = KeySpec(
    "Filesystem", "AllowWriteExec", "strings", K.PATH,
    "executable paths that may also be writable (W^X waived for them); grants nothing itself: without it, a writable path that can match an executable one is an error",
)
FS_LOG_ON_WRITE = KeySpec("Filesystem", "LogOnWrite", "strings", K.PATH, "paths where every write is logged to the audit log")
USER_CAPABILITIES = KeySpec("User", "Capabilities", "strings", K.CAPABILITY, "capabilities the program keeps (names without CAP_, lower case)")
USER_DENY_CAPABILITIES = KeySpec("User", "DenyCapabilities", "strings", K.CAPABILITY, "capabilities denied whatever else allows them")
MISC_SYSCALLS = KeySpec("Misc", "Syscalls", "strings", K.SYSCALL, "system calls allowed beyond those of the flags")
MISC_DENY_SYSCALLS = KeySpec("Misc", "DenySyscalls", "strings", K.SYSCALL, "system calls denied whatever else allows them")
MISC_IMPLY_FLAGS: KeySpec[bool] = KeySpec("Misc", "ImplyFlags", "bool", None, "whether ReadOnly, Writable and Exec paths add the rpath, wpath, cpath and exec flags (default true)")

#: The allow-path keys, in order, for code that treats them alike.
FS_PATHS: tuple[KeySpec[str], ...] = (FS_READ_ONLY, FS_WRITABLE, FS_EXEC, FS_LIBRARIES)

#: Every key of the five categories: what a Policy holds and lowering walks.
POLICY_KEYS: tuple[KeySpec[Any], ...] = (
    FLAGS["Networking"], DENY_FLAGS["Networking"], NET_PROTOCOLS, NET_CONNECT, NET_BIND, NET_SOCKET_OPTIONS, NET_DENY, NET_ALPN, NET_ALPN_ONLY,
    FLAGS["Filesystem"], DENY_FLAGS["Filesystem"], *FS_PATHS, FS_EXEC_PROFILES, FS_DENY, FS_LOG_ON_WRITE, FS_ALLOW_WRITE_EXEC,
    FLAGS["Runtime"], DENY_FLAGS["Runtime"],
    FLAGS["User"], DENY_FLAGS["User"], USER_CAPABILITIES, USER_DENY_CAPABILITIES,
    FLAGS["Misc"], DENY_FLAGS["Misc"], MISC_SYSCALLS, MISC_DENY_SYSCALLS, MISC_IMPLY_FLAGS,
)  # fmt: skip

#: The same keys by category, for the loader and the docs.
SECTIONS: dict[str, tuple[KeySpec[Any], ...]] = {s: tuple(k for k in POLICY_KEYS if k.section == s) for s in CATEGORIES}

TOP: tuple[KeySpec[Any], ...] = (
    KeySpec("", "Name", "str", K.NAME, "the profile's name: letters, digits, '.', '_' and '-'"),
    KeySpec("", "Description", "str", K.TEXT, "one line saying what the confined program is"),
    KeySpec("", "Extends", "strings", K.EXTENDS, "shipped templates (by name) or policy files (by path) merged into this one"),
    *(KeySpec("", s, "table", doc=f"the {s} category") for s in CATEGORIES),
    KeySpec("", "Flag", "tables", doc="a user-defined flag"),
    KeySpec("", "Test", "tables", doc="a policy test, run by `corral verify`"),
)

#: Keys of a [[Test]]: a probe (with its parameters) or a command, and the expectation.
TEST_KEYS: tuple[KeySpec[Any], ...] = (
    KeySpec("Test", "Name", "str", K.TEXT, "what the test checks, in a few words"),
    KeySpec("Test", "Probe", "str", None, "a shipped probe: read, write, create, exec, connect, setsockopt, ..."),
    KeySpec("Test", "Run", "strings", None, "a command to run under `corral run` (exit 0 means allowed)"),
    KeySpec("Test", "Path", "str", None, "the path a file probe uses"),
    KeySpec("Test", "Port", "int", None, "the TCP port of a connect or bind probe"),
    KeySpec("Test", "Option", "str", K.SOCKOPT, "the socket option of a setsockopt probe"),
    KeySpec("Test", "Family", "str", None, "the socket family of a socket probe"),
    KeySpec("Test", "Type", "str", None, "the socket type of a socket probe"),
    KeySpec("Test", "Expect", "str", None, "allow or deny"),
)

#: The list keys a flag shares with policies, and their item kinds.
FLAG_LIST_KEYS: dict[str, ItemKind[Any]] = {
    "Capabilities": K.CAPABILITY,
    "Protocols": K.PROTOCOL,
    "Connect": K.PORT,
    "Bind": K.PORT,
    "SocketOptions": K.SOCKOPT,
    **{k: K.PATH for k in PATH_KEYS},
}

#: Keys of a flag, in the catalogue and in a policy's [[Flag]].
FLAG_KEYS: tuple[KeySpec[Any], ...] = (
    KeySpec("Flag", "Name", "str", K.NAME, "the flag's name"),
    KeySpec("Flag", "Description", "str", K.TEXT, "one line in plain words: what the flag lets a program do"),
    KeySpec("Flag", "Category", "str", None, "the section the flag belongs in (optional for user flags)"),
    KeySpec("Flag", "Syscalls", "strings", K.SYSCALL, "system calls allowed unconditionally"),
    KeySpec("Flag", "Args", "table", doc="system calls allowed only when their arguments match"),
    KeySpec("Flag", "Errno", "table", doc="system calls answered with this error instead of running"),
    KeySpec("Flag", "Capabilities", "strings", K.CAPABILITY, "capabilities the flag needs"),
    *(KeySpec("Flag", k, "strings", FLAG_LIST_KEYS[k], f"as Networking.{k}") for k in ("Protocols", "Connect", "Bind", "SocketOptions")),
    *(KeySpec("Flag", k, "strings", K.PATH, f"paths the flag may {v}") for k, v in PATH_KEYS.items()),
    KeySpec("Flag", "Notes", "str", K.TEXT, "caveats, and how OpenBSD names map to Linux"),
)
