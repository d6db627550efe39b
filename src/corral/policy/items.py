"""Item kinds: what one string of a policy list may be, parsed once.

Every list key of the policy language (``schema.POLICY_KEYS``) names the
kind of its items. A kind is an object, not a name looked up at run time:
it parses a string into a typed value (a ``PortSpec``, an ``ExecProfile``,
a checked name) or a ``Problem``, and knows its JSON Schema and an example.
Lowering reads the typed value and never parses a string again.

There is no default kind. Asking for a kind by a name that is not in
``KINDS`` is an ``InternalError``: a key whose kind has no checker must not
load, because an unchecked string would reach an artifact as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import InternalError
from ..escape import one_line
from . import globs

T = TypeVar("T")

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PORT_RE = re.compile(
    r"(?P<proto>tcp|udp|http):(?:(?:(?P<addr>[0-9.]+(?:/\d{1,2})?|\[[0-9A-Fa-f:.]+(?:/\d{1,3})?\])|(?P<host>(?:\*\.)?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?)):)?(?P<port>\*|\d{1,5}(?:-\d{1,5})?)"
)
#: One DNS label (RFC 1035, letters/digits/hyphens, ASCII: IDNs in punycode).
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: An ALPN protocol ID (RFC 7301): 1 to 255 printable ASCII bytes.
ALPN_RE = re.compile(r"[\x21-\x7e]{1,255}")

#: The sentinel for "any port" (tcp:*); the IR uses the same value.
ANY_PORT = 0


@dataclass(frozen=True)
class Problem:
    """Why a string is not a valid item; ``offset`` points inside it when known."""

    code: str
    message: str
    #: a string, or a function computing it ("did you mean" costs ~3 ms a
    #: name): called only for errors that will be shown (``Reader.report``)
    hint: str | Callable[[], str] = ""
    offset: int | None = None


@dataclass(frozen=True)
class PortSpec:
    """``tcp:10.0.0.0/8:5432-5433`` parsed: protocol, peer ("" = any), ports."""

    protocol: str
    address: str
    low: int  # ANY_PORT for tcp:*
    high: int
    host: str = ""  # a DNS name (lower case, no final dot), "*.example.com" for every name below

    def ports(self) -> list[int]:
        if self.low == ANY_PORT:
            return [ANY_PORT]
        return list(range(self.low, self.high + 1))


@dataclass(frozen=True)
class ExecProfile:
    """``{ "/usr/bin/helper" = "helper" }``: a program and the AppArmor profile it runs under."""

    program: str
    profile: str


class ItemKind(Generic[T]):
    """One kind of list item. Subclasses set ``name``, ``example`` and ``doc``
    and implement ``check`` (validation, skipped for trusted shipped data)
    and ``convert`` (to the typed value, always run)."""

    name: str = ""
    example: str = ""
    doc: str = ""

    def check(self, value: str) -> Problem | None:
        raise InternalError(f"item kind {self.name or type(self).__name__!r} has no checker: nothing unchecked may load")

    def convert(self, value: str) -> T:
        raise InternalError(f"item kind {self.name or type(self).__name__!r} has no conversion")

    def parse(self, value: str, *, trusted: bool = False) -> T | Problem:
        """The typed value, or the problem with ``value``."""
        if not trusted:
            problem = self.check(value)
            if problem is not None:
                return problem
        return self.convert(value)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def __repr__(self) -> str:
        return f"<item kind {self.name}>"


class _Str(ItemKind[str]):
    def convert(self, value: str) -> str:
        return value


class Syscall(_Str):
    name, example, doc = "syscall", "openat", "a Linux system call name, as in syscalls(2)"

    def check(self, value: str) -> Problem | None:
        from .. import _seccomp
        from .suggest import did_you_mean

        if _seccomp.is_known(value):
            return None
        return Problem("E005", f"unknown system call '{value}'", lambda: did_you_mean(value, _seccomp.known_names()) or "system calls use their Linux names, as in syscalls(2)")

    def json_schema(self) -> dict[str, Any]:
        from .. import _seccomp

        return {"enum": list(_seccomp.known_names())}


class Capability(_Str):
    name, example, doc = "capability", "net_bind_service", "a capability, lower case without CAP_"

    def check(self, value: str) -> Problem | None:
        from . import catalog
        from .suggest import did_you_mean

        caps = catalog.capabilities()
        if value in caps:
            return None
        bare = value.lower().removeprefix("cap_")
        hint = f"did you mean '{bare}'? (lower case, without CAP_)" if bare in caps else did_you_mean(value, caps)
        return Problem("E006", f"unknown capability '{value}'", hint or "see capabilities(7); write net_raw for CAP_NET_RAW")

    def json_schema(self) -> dict[str, Any]:
        from . import catalog

        return {"enum": sorted(catalog.capabilities())}


class SocketOptionKind(_Str):
    name, example, doc = "sockopt", "tcp_nodelay", "a socket option by its lower-case name"

    def check(self, value: str) -> Problem | None:
        from . import catalog
        from .suggest import did_you_mean

        opts = catalog.socket_options()
        if value in opts:
            return None
        return Problem("E007", f"unknown socket option '{value}'", lambda: did_you_mean(value.lower(), opts) or "socket options by their lower-case names: tcp_nodelay, so_keepalive, ip_tos, ipv6_v6only, ...")

    def json_schema(self) -> dict[str, Any]:
        from . import catalog

        return {"enum": sorted(catalog.socket_options())}


class ProtocolKind(_Str):
    name, example, doc = "protocol", "tcp", "a protocol: tcp, udp, icmp, icmp-raw, raw, unix, netlink, packet"

    def check(self, value: str) -> Problem | None:
        from . import catalog
        from .suggest import did_you_mean

        protos = catalog.protocols()
        if value in protos:
            return None
        return Problem("E013", f"unknown protocol '{value}'", lambda: did_you_mean(value, protos) or f"one of: {', '.join(protos)}")

    def json_schema(self) -> dict[str, Any]:
        from . import catalog

        return {"enum": list(catalog.protocols())}


def host_problem(host: str) -> str:
    """Why ``host`` (from a Connect or Deny entry) is not a usable DNS name,
    or "" if it is. ``*.`` may only lead, and needs two labels after it: a
    wildcard over a whole top-level domain is almost surely a mistake."""
    name = host.lower().rstrip(".")
    wildcard = name.startswith("*.")
    labels = name[2:].split(".") if wildcard else name.split(".")
    if len(name) > 253:
        return "longer than 253 characters"
    bad = next((label for label in labels if not _LABEL_RE.fullmatch(label)), None)
    if bad is not None:
        return f"label {bad!r} is not letters, digits and inner hyphens (at most 63)"
    if labels[-1].isdigit():
        return "the last label is a number (an address? write it as a.b.c.d)"
    if wildcard and len(labels) < 2:
        return "a wildcard needs at least two labels after '*.'"
    return ""


class Port(ItemKind[PortSpec]):
    name, example, doc = "port", "tcp:443", "tcp:PORT, tcp:LOW-HIGH, tcp:*, udp:PORT, optionally with a peer: tcp:203.0.113.5:443"
    hosts = False  # Bind: a port of this host; Connect and Deny (Peer) also take names

    def check(self, value: str) -> Problem | None:
        m = PORT_RE.fullmatch(value)
        if m is None:
            return Problem("E009", f"invalid port '{value}'", "write tcp:443, tcp:8000-8080, tcp:* for any port, udp:53, or with a peer: tcp:203.0.113.5:443, tcp:10.0.0.0/8:5432, tcp:[2001:db8::1]:443, tcp:api.example.com:443")
        host = m.group("host")
        if m.group("proto") == "http" and not (host and self.hosts):
            return Problem("E009", f"'{value}': http: takes a host name (plain HTTP to that host)", "write http:api.example.com:80 in Networking.Connect or Deny; ports and addresses take tcp:")
        if host and not self.hosts:
            return Problem("E009", f"a host name where only ports go: '{value}'", "host names go in Networking.Connect and Networking.Deny; Bind and flags take ports (tcp:8443)")
        if host:
            problem = host_problem(host)
            if problem:
                return Problem("E009", f"invalid host name in '{value}': {problem}", "a DNS name (api.example.com), or *.example.com for every name below example.com")
        addr = m.group("addr")
        if addr:
            import ipaddress

            try:
                ipaddress.ip_network(addr.strip("[]"), strict=False)
            except ValueError:
                return Problem("E009", f"invalid address in '{value}'", "an IPv4 or [IPv6] address, optionally with a /prefix")
        spec = m.group("port")
        if spec != "*":
            low, _, high = spec.partition("-")
            lo, hi = int(low), int(high or low)
            if not (1 <= lo <= hi <= 65535):
                return Problem("E009", f"port out of range in '{value}'", "ports run from 1 to 65535, and a range from low to high")
            if hi - lo >= 1024:
                return Problem("E009", f"port range '{value}' spans more than 1024 ports", "Landlock needs one rule per port; use tcp:* to allow any port")
        return None

    def convert(self, value: str) -> PortSpec:
        m = PORT_RE.fullmatch(value)
        if m is None:
            raise InternalError(f"unchecked port {value!r} reached conversion")
        address = (m.group("addr") or "").strip("[]")
        if address:
            from ..addresses import canonical

            address = canonical(address)  # ::ffff:a.b.c.d is a.b.c.d: one spelling for every backend
        host = (m.group("host") or "").lower().rstrip(".")
        spec = m.group("port")
        if spec == "*":
            return PortSpec(m.group("proto"), address, ANY_PORT, ANY_PORT, host)
        low, _, high = spec.partition("-")
        return PortSpec(m.group("proto"), address, int(low), int(high or low), host)

    def json_schema(self) -> dict[str, Any]:
        # JSON Schema patterns are ECMA-262: no Python-only named groups
        return {"type": "string", "pattern": "^" + re.sub(r"\(\?P<\w+>", "(", PORT_RE.pattern) + "$"}


class Peer(Port):
    name, example, doc = "peer", "tcp:api.example.com:443", "a port as for Bind, optionally with a peer address, network or DNS name: tcp:203.0.113.5:443, tcp:api.example.com:443, tcp:*.example.com:443; http:api.example.com:80 for plain HTTP to a name"
    hosts = True


class Alpn(_Str):
    name, example, doc = "alpn", "h2", "a TLS application protocol ID (RFC 7301): h2, http/1.1"

    def check(self, value: str) -> Problem | None:
        if ALPN_RE.fullmatch(value):
            return None
        return Problem("E009", f"invalid ALPN protocol {value!r}", "protocol IDs as TLS names them (RFC 7301): h2, http/1.1, h3")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{ALPN_RE.pattern}$"}


class Path(_Str):
    name, example, doc = "path", "/run/app/**", "an absolute path or AppArmor glob"

    def check(self, value: str) -> Problem | None:
        try:
            globs.validate(value)
        except globs.GlobError as exc:
            return Problem("E008", f"invalid path {value!r}: {exc.message}", exc.hint, exc.offset)
        return None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": '^/[^"\\u0000-\\u001f]*$'}


class Name(_Str):
    name, example, doc = "name", "agent-http2", "letters, digits, '.', '_' and '-'"

    def check(self, value: str) -> Problem | None:
        if NAME_RE.fullmatch(value):
            return None
        return Problem("E011", f"invalid name {value!r}", "a name is letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{NAME_RE.pattern}$"}


class Text(_Str):
    name, example, doc = "text", "what the program is", "one line of printable text"

    def check(self, value: str) -> Problem | None:
        if not one_line(value):  # Unicode line breaks too: YAML ends a comment at U+2028
            return Problem("E011", "text must be one line of printable characters", "remove newlines and control characters")
        return None


class FlagName(_Str):
    """A flag's name. Checked once the whole policy (and its [[Flag]]s) is
    known, by the loader: here only its shape."""

    name, example, doc = "flag", "dns", "a flag of the catalogue or a [[Flag]] of the policy"

    def check(self, value: str) -> Problem | None:
        return None  # resolved against the merged flags in loader._check_flag_names

    def json_schema(self, category: str | None = None) -> dict[str, Any]:
        from . import catalog

        names = sorted(n for n, f in catalog.flags().items() if category in (None, f.category))
        return {"type": "string", "description": "a flag: " + ", ".join(names) + ", or a [[Flag]] of the policy"}


class Extends(_Str):
    name, example, doc = "extends", "base", "a shipped template's name or a policy file's path"

    def check(self, value: str) -> Problem | None:
        return None  # resolved (and reported) by the loader when it extends


class ExecProfileKind(ItemKind[ExecProfile]):
    """A table entry ``"PROGRAM" = "PROFILE"``: a path key and a name value."""

    name, example, doc = "execprofile", '"/usr/bin/helper" = "helper"', "a program path mapped to its AppArmor profile's name"

    def check_entry(self, program: str, profile: str) -> Problem | None:
        return PATH.check(program) or NAME.check(profile)

    def entry(self, program: str, profile: str) -> ExecProfile:
        return ExecProfile(program, profile)

    def check(self, value: str) -> Problem | None:
        raise InternalError("an exec profile is a table entry, not a string")

    def convert(self, value: str) -> ExecProfile:
        raise InternalError("an exec profile is a table entry, not a string")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "propertyNames": PATH.json_schema(), "additionalProperties": NAME.json_schema()}


SYSCALL = Syscall()
CAPABILITY = Capability()
SOCKOPT = SocketOptionKind()
PROTOCOL = ProtocolKind()
PORT = Port()
PEER = Peer()
ALPN = Alpn()
PATH = Path()
NAME = Name()
TEXT = Text()
FLAG = FlagName()
EXTENDS = Extends()
EXEC_PROFILE = ExecProfileKind()

#: Every item kind, by name: the only place a name turns into a kind.
KINDS: dict[str, ItemKind[Any]] = {k.name: k for k in (SYSCALL, CAPABILITY, SOCKOPT, PROTOCOL, PORT, PEER, ALPN, PATH, NAME, TEXT, FLAG, EXTENDS, EXEC_PROFILE)}


def kind(name: str) -> ItemKind[Any]:
    """The kind called ``name``; an unknown name is a bug in corral, never "accept"."""
    try:
        return KINDS[name]
    except KeyError:
        raise InternalError(f"unknown item kind {name!r}: a key must name a kind with a checker") from None
