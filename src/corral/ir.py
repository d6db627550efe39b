"""The one intermediate form every backend reads.

Lowering (``lower.py``) resolves Extends, flags and deny-overrides-allow
once; what remains is a small, frozen, sorted set of rules. Every rule keeps
the span it came from and a human ``origin`` ("flag dns",
"Filesystem.Writable") so coverage reports and errors can cite it.

Deny is explicit where a backend can use it (file deny rules, denied
capabilities) and already applied everywhere else: a denied syscall simply
is not in ``syscalls``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import Span
from .policy.items import ANY_PORT as _ANY_PORT
from .policy.model import Alternative, ArgCmp, CmpOp


class Access(enum.Flag):
    """File access rights, named after what a program does."""

    NONE = 0
    READ = enum.auto()
    WRITE = enum.auto()  # write, create, delete, truncate
    LOCK = enum.auto()
    MAP_EXEC = enum.auto()  # mmap(PROT_EXEC): loading code
    EXEC = enum.auto()  # execve, staying under the same policy
    LINK = enum.auto()

    @classmethod
    def everything(cls) -> "Access":
        return cls.READ | cls.WRITE | cls.LOCK | cls.MAP_EXEC | cls.EXEC | cls.LINK

    def names(self) -> list[str]:
        return [a.name.lower() for a in Access if a in self and a.name and a is not Access.NONE]


#: What each Filesystem path key grants.
PATH_ACCESS = {
    "ReadOnly": Access.READ,
    "Writable": Access.READ | Access.WRITE | Access.LOCK | Access.LINK,  # hard links: AppArmor `l` (the link may not grant more than its target), Landlock make_reg + refer
    "Exec": Access.READ | Access.MAP_EXEC | Access.EXEC,
    "Libraries": Access.READ | Access.MAP_EXEC,
}


@dataclass(frozen=True, order=True)
class FileRule:
    """Access to paths matching an AppArmor glob; ``deny`` rules win."""

    path: str
    access: Access = field(compare=False)
    deny: bool = False
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)
    #: For EXEC: the AppArmor profile the program runs under ("" = this one).
    transition: str = field(default="", compare=False)


@dataclass(frozen=True, order=True)
class AuditRule:
    """Writes to paths matching the glob are logged (Filesystem.LogOnWrite)."""

    path: str
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


#: socket(2)'s protocol argument is not limited (raw and packet sockets).
ANY_PROTOCOL = -1

#: An argument value that stands for the confined program's own process ID.
#: A compiled artifact cannot know it (it keeps only the pid-0 forms);
#: ``corral run`` knows it, because it execs the program in place.
SELF_PID = -2


@dataclass(frozen=True, order=True)
class SocketRule:
    """Sockets of one (family, type) may be created, with one of
    ``protocols`` as socket(2)'s third argument (``ANY_PROTOCOL``: any)."""

    family: str
    type: str
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)
    protocols: tuple[int, ...] = field(default=(ANY_PROTOCOL,), compare=False)


#: System calls that send signals to other processes (AppArmor's signal
#: rules and Landlock's signal scope both hinge on them).
SIGNAL_CALLS = frozenset({"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"})

#: The sentinel for "any port" (tcp:*), distinct from an empty list.
ANY_PORT = _ANY_PORT


@dataclass(frozen=True, order=True)
class PortRule:
    """Connect or bind to one port (``ANY_PORT`` for all), over TCP or UDP,
    optionally only with one peer address or network (``""``: any)."""

    direction: str  # "connect" | "bind"
    port: int
    protocol: str = "tcp"
    address: str = ""
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, order=True)
class HostRule:
    """Connect to a DNS name (``*.example.com``: any name one or more labels
    below it) on one port: only to an address the name resolves to, and for
    TLS only with that name as SNI. Landlock, which sees ports only, gets the
    port as its floor."""

    host: str
    port: int
    protocol: str = "tcp"
    #: ``http:NAME:PORT``: plain HTTP whose every request names the host
    #: (``tcp:`` names are TLS only: the relay refuses anything else)
    plain_http: bool = False
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, order=True)
class PeerDenyRule:
    """Never connect to this network or name (``Networking.Deny``), on one
    port or ``ANY_PORT``, whatever allows it."""

    protocol: str
    port: int
    address: str = ""
    host: str = ""
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, order=True)
class AlpnRule:
    """TLS connections to named peers must offer one of these application
    protocols (``Networking.ALPN``): "HTTP/2" is ``("h2",)``; with ``only``
    (``Networking.ALPNOnly``) they may offer no other. The offer is always
    visible; the server's choice only in TLS 1.2 (TLS 1.3 encrypts it)."""

    protocols: tuple[str, ...]
    only: bool = False
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, order=True)
class SocketOptionRule:
    """setsockopt(level, optname) allowed for this pair."""

    name: str
    level: int = field(compare=False)
    optname: int = field(compare=False)
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, order=True)
class SyscallRule:
    """A syscall allowed (or answered with ``errno``).

    ``alternatives`` empty means unconditional; otherwise the call is allowed
    when any alternative's comparisons all hold.
    """

    name: str
    alternatives: tuple[Alternative, ...] = field(default=(), compare=False)
    errno: int | None = field(default=None, compare=False)
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)
    #: Guards that narrowed a call the policy allows outright (``guards.py``).
    narrowed_by: tuple[str, ...] = field(default=(), compare=False)

    @property
    def outright(self) -> bool:
        """Allowed whatever its arguments, but for the forms guards refuse."""
        return self.errno is None and (not self.alternatives or bool(self.narrowed_by))


@dataclass(frozen=True, order=True)
class CapabilityRule:
    """A capability kept (``deny`` False) or explicitly denied."""

    name: str
    deny: bool = False
    origin: str = field(default="", compare=False)
    span: Span = field(default=Span(""), compare=False)


Rule = FileRule | AuditRule | SocketRule | PortRule | HostRule | PeerDenyRule | AlpnRule | SocketOptionRule | SyscallRule | CapabilityRule

#: The IR's egress rules: what only a supervisor that sees addresses and
#: TLS handshakes (corral run's, or a packet filter fed with resolved
#: addresses, approximately) can enforce.
EgressRule = HostRule | PeerDenyRule | AlpnRule


@dataclass(frozen=True)
class RuleKind:
    """One kind of rule: its class, the IR field holding it, and its plural
    noun in reports. ``RULE_KINDS`` is the one list of rule kinds."""

    cls: type
    field: str
    noun: str


RULE_KINDS: tuple[RuleKind, ...] = (
    RuleKind(FileRule, "files", "files"),
    RuleKind(AuditRule, "audits", "logged writes"),
    RuleKind(SocketRule, "sockets", "socket types"),
    RuleKind(PortRule, "ports", "ports"),
    RuleKind(HostRule, "hosts", "host names"),
    RuleKind(PeerDenyRule, "peer_denies", "denied peers"),
    RuleKind(AlpnRule, "alpn", "TLS protocols"),
    RuleKind(SocketOptionRule, "socket_options", "socket options"),
    RuleKind(SyscallRule, "syscalls", "system calls"),
    RuleKind(CapabilityRule, "capabilities", "capabilities"),
)
_BY_CLASS = {k.cls: k for k in RULE_KINDS}


def kind_of(rule: Rule) -> RuleKind:
    return _BY_CLASS[type(rule)]


@dataclass(frozen=True)
class IR:
    """A lowered policy. Collections are sorted tuples: outputs are deterministic."""

    name: str
    description: str
    source: str
    files: tuple[FileRule, ...] = ()
    audits: tuple[AuditRule, ...] = ()
    sockets: tuple[SocketRule, ...] = ()
    ports: tuple[PortRule, ...] = ()
    socket_options: tuple[SocketOptionRule, ...] = ()
    syscalls: tuple[SyscallRule, ...] = ()
    capabilities: tuple[CapabilityRule, ...] = ()
    denied_syscalls: tuple[SyscallRule, ...] = ()
    hosts: tuple[HostRule, ...] = ()
    peer_denies: tuple[PeerDenyRule, ...] = ()
    alpn: tuple[AlpnRule, ...] = ()
    #: Call forms every filter refuses (guards: TIOCSTI, MSG_FASTOPEN, ...),
    #: as errno rules; learning mode needs them explicitly.
    refusals: tuple[SyscallRule, ...] = ()
    #: Guards the policy lifted by naming their flag (``corral explain`` lists them).
    lifted: tuple[str, ...] = ()
    #: Protocols allowed whose ports Landlock's port rules do not see (mptcp, sctp, udplite).
    unported: tuple[str, ...] = ()
    #: Executable paths a writable rule reaches, as Filesystem.AllowWriteExec
    #: lets them be (``write_exec``; ``corral explain`` lists them).
    write_exec: tuple[str, ...] = ()

    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for kind in RULE_KINDS for r in getattr(self, kind.field))

    def egress(self) -> tuple[EgressRule, ...]:
        return (*self.hosts, *self.peer_denies, *self.alpn)

    @property
    def supervised(self) -> bool:
        """Whether ``corral run`` needs its egress supervisor: a rule names a
        host, a denied peer or TLS protocols (nothing the kernel's own
        filters can see). Policies without them start without one.
        Constant time: backends ask once per rule."""
        return bool(self.hosts or self.peer_denies or self.alpn)

    @property
    def setsockopt_filtered(self) -> bool:
        """Whether setsockopt is limited to ``socket_options`` (not allowed outright)."""
        return not any(r.name == "setsockopt" and r.outright for r in self.syscalls)

    def to_json(self) -> str:
        def enc(o: Any) -> Any:
            if isinstance(o, Access):
                return o.names()
            if isinstance(o, Span):
                return str(o)
            if isinstance(o, CmpOp):
                return o.policy
            raise TypeError(type(o).__name__)

        return json.dumps(asdict(self), default=enc, indent=2)


__all__ = [
    "ANY_PORT",
    "ANY_PROTOCOL",
    "SELF_PID",
    "SIGNAL_CALLS",
    "IR",
    "PATH_ACCESS",
    "Access",
    "ArgCmp",
    "AlpnRule",
    "AuditRule",
    "EgressRule",
    "HostRule",
    "PeerDenyRule",
    "CapabilityRule",
    "FileRule",
    "PortRule",
    "RULE_KINDS",
    "Rule",
    "RuleKind",
    "SocketOptionRule",
    "SocketRule",
    "SyscallRule",
    "kind_of",
]
