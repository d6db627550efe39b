"""The policy language's keys: the one table the loader, the docs and the
(later) JSON Schema are all generated from.

Each entry names a key, the kind of value it takes and one line saying what
it means. Kinds: ``str``, ``strings`` (a list of strings, each validated as
``item``), ``table`` and ``tables`` (an array of tables).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    name: str
    kind: str
    item: str = ""
    doc: str = ""


def _flags_keys() -> tuple[Key, ...]:
    return (
        Key("Flags", "strings", "flag", "flags (named bundles of permissions) this policy allows"),
        Key("DenyFlags", "strings", "flag", "flags whose every permission is denied, whatever else allows it"),
    )


#: Path lists, each with the file access it grants (see ir.Access).
PATH_KEYS: dict[str, str] = {
    "ReadOnly": "read",
    "Writable": "read, write, create, delete and lock",
    "Exec": "read and execute (the program runs under the same policy)",
    "Libraries": "read and map as executable code (shared libraries)",
}

#: Networking lists shared by policies and flags.
NET_KEYS: dict[str, str] = {
    "Protocols": "protocol",
    "Connect": "port",
    "Bind": "port",
    "SocketOptions": "sockopt",
}

SECTIONS: dict[str, tuple[Key, ...]] = {
    "Networking": _flags_keys()
    + (
        Key("Protocols", "strings", "protocol", "protocols sockets may use: tcp, udp, icmp, raw, unix, netlink, packet"),
        Key("Connect", "strings", "port", "ports the program may connect to: tcp:443, tcp:8000-8080, tcp:*, udp:53, or with a peer tcp:203.0.113.5:443, tcp:[2001:db8::1]:443"),
        Key("Bind", "strings", "port", "ports the program may listen on, as tcp:PORT, tcp:LOW-HIGH, tcp:* or udp:PORT"),
        Key("SocketOptions", "strings", "sockopt", "socket options the program may set, by name (tcp_nodelay, so_keepalive, ...)"),
    ),
    "Filesystem": _flags_keys()
    + tuple(Key(k, "strings", "path", f"paths the program may {v}") for k, v in PATH_KEYS.items())
    + (
        Key("ExecProfiles", "table", "execprofile", 'programs that run under an AppArmor profile of their own: { "/usr/bin/helper" = "helper" }'),
        Key("Deny", "strings", "path", "paths the program may not touch at all, whatever else allows them"),
        Key("LogOnWrite", "strings", "path", "paths where every write is logged to the audit log"),
    ),
    "Runtime": _flags_keys(),
    "User": _flags_keys()
    + (
        Key("Capabilities", "strings", "capability", "capabilities the program keeps (names without CAP_, lower case)"),
        Key("DenyCapabilities", "strings", "capability", "capabilities denied whatever else allows them"),
    ),
    "Misc": _flags_keys()
    + (
        Key("Syscalls", "strings", "syscall", "system calls allowed beyond those of the flags"),
        Key("DenySyscalls", "strings", "syscall", "system calls denied whatever else allows them"),
        Key("ImplyFlags", "bool", "", "whether Writable and Exec paths add the wpath, cpath and exec flags (default true)"),
    ),
}

TOP: tuple[Key, ...] = (
    Key("Name", "str", "name", "the profile's name: letters, digits, '.', '_' and '-'"),
    Key("Description", "str", "text", "one line saying what the confined program is"),
    Key("Extends", "strings", "extends", "shipped templates (by name) or policy files (by path) merged into this one"),
    *(Key(s, "table", doc=f"the {s} category") for s in SECTIONS),
    Key("Flag", "tables", doc="a user-defined flag"),
    Key("Test", "tables", doc="a policy test, run by `corral verify`"),
)

#: Keys of a [[Test]]: a probe (with its parameters) or a command, and the expectation.
TEST_KEYS: tuple[Key, ...] = (
    Key("Name", "str", "text", "what the test checks, in a few words"),
    Key("Probe", "str", "probe", "a shipped probe: read, write, create, exec, connect, setsockopt, ..."),
    Key("Run", "strings", "", "a command to run under `corral run` (exit 0 means allowed)"),
    Key("Path", "str", "", "the path a file probe uses"),
    Key("Port", "int", "", "the TCP port of a connect or bind probe"),
    Key("Option", "str", "sockopt", "the socket option of a setsockopt probe"),
    Key("Family", "str", "", "the socket family of a socket probe"),
    Key("Type", "str", "", "the socket type of a socket probe"),
    Key("Expect", "str", "", "allow or deny"),
)

#: Keys of a flag, in the catalogue and in a policy's [[Flag]].
FLAG_KEYS: tuple[Key, ...] = (
    Key("Name", "str", "name", "the flag's name"),
    Key("Description", "str", "text", "one line in plain words: what the flag lets a program do"),
    Key("Category", "str", "category", "the section the flag belongs in (optional for user flags)"),
    Key("Syscalls", "strings", "syscall", "system calls allowed unconditionally"),
    Key("Args", "table", doc="system calls allowed only when their arguments match"),
    Key("Errno", "table", doc="system calls answered with this error instead of running"),
    Key("Capabilities", "strings", "capability", "capabilities the flag needs"),
    *(Key(k, "strings", v, f"as Networking.{k}") for k, v in NET_KEYS.items()),
    *(Key(k, "strings", "path", f"paths the flag may {v}") for k, v in PATH_KEYS.items()),
    Key("Notes", "str", "text", "caveats, and how OpenBSD names map to Linux"),
)
