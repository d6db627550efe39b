"""Lower a loaded Policy into the IR, applying deny-overrides-allow once.

Rules of the language, applied here and nowhere else:

* A flag in ``Flags`` grants everything it names. A flag in ``DenyFlags``
  denies everything it names, whatever else grants it: its syscalls, paths,
  protocols, ports, socket options and capabilities.
* Deny is by whole syscall: a syscall some flag allows only with certain
  arguments and another denies is denied outright (the safe direction).
* Among allows, the wider wins: an unconditional allow absorbs argument
  filters, and an allow absorbs an ``Errno`` stub of the same syscall.
* ``socket(2)`` is always limited to the (family, type) pairs of the
  allowed protocols, each with protocol 0 or the protocol's own number
  (MPTCP, UDP-Lite and SCTP only when the policy names them); ``setsockopt(2)`` to the allowed socket options unless
  something allows it outright.
* An allow path wholly inside a deny path is dropped; a deny inside an
  allow stays a deny rule for the backends that can express it.
* ReadOnly paths imply the rpath flag, Writable paths the wpath and cpath
  flags, Exec paths the exec flag (a ReadOnly directory is listed under
  AppArmor; without rpath seccomp refused getdents64): paths say where, and seccomp cannot see paths, so the operations
  must be allowed for the paths to be usable (a DenyFlags still wins;
  ``Misc.ImplyFlags = false`` turns this off, as traced policies do).
* Guards (``guards.py``) narrow what is left: TIOCSTI never, MSG_FASTOPEN
  and calls on other processes only when the policy names the flag that
  lifts them.
* Nothing is allowed that no key or flag allows: an empty policy lowers to
  an IR with no rules at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from . import _seccomp, guards
from .errors import Diagnostic, InternalError, PolicyError, Span
from .hostnames import host_matches
from .ir import (
    ANY_PORT,
    ANY_PROTOCOL,
    IR,
    PATH_ACCESS,
    Access,
    AlpnRule,
    AuditRule,
    CapabilityRule,
    FileRule,
    HostRule,
    PeerDenyRule,
    PortRule,
    SocketOptionRule,
    SocketRule,
    SyscallRule,
)
from .policy import catalog, globs, items, schema
from .policy.items import PortSpec
from .policy.model import Alternative, ArgCmp, CmpOp, FlagDef, Item, Policy
from .policy.schema import POLICY_KEYS, KeySpec
from .write_exec import check as check_write_exec

#: SOCK_TYPE_MASK: socket(2)'s type argument also carries SOCK_NONBLOCK/CLOEXEC.
_SOCK_TYPE_MASK = 0xF


#: Limits that keep lowering bounded and every compiled profile loadable,
#: measured against the real apparmor_parser (-Q -S) on this machine:
#: its DFA state numbers are 16 bits ("Too many states (91119) for type
#: state_t"; about 58,000 short literal rules exit 10 with no message).
#: Paths each side of a policy may name (Deny is compared with each allow).
MAX_PATHS = 10_000
#: States the AppArmor file DFA may need, estimated as the nodes of a trie
#: of every path's expansions (literal paths need about that many; the
#: parser fails beyond 65,535): kept under the limit with room for globs.
MAX_DFA_ESTIMATE = 60_000
#: Port, host and peer rules after ranges are expanded (one per port).
MAX_NET_RULES = 100_000


def _too_many(span: Span | None, what: str, limit: int, why: str) -> PolicyError:
    return PolicyError([Diagnostic(span or Span(""), "E024", f"{what}: the limit is {limit:,}", why)])


class _Grants:
    """Everything one side (allow or deny) names, with origins."""

    def __init__(self) -> None:
        self.net_rules = 0
        self.syscalls: dict[str, tuple[str, Span]] = {}
        self.args: dict[str, list[tuple[Alternative, str, Span]]] = defaultdict(list)
        self.errno: dict[str, tuple[int, str, Span]] = {}
        self.paths: dict[str, tuple[Access, str, Span]] = {}
        self.transitions: dict[str, str] = {}
        self.protocols: dict[str, tuple[str, Span]] = {}
        self.ports: dict[tuple[str, int, str, str], tuple[str, Span]] = {}
        self.hosts: dict[tuple[str, int, str, bool], tuple[str, Span]] = {}  # (host, port, protocol, plain HTTP)
        self.peers: dict[tuple[str, int, str, str], tuple[str, Span]] = {}
        self.alpn: dict[str, Span] = {}
        self.sockopts: dict[str, tuple[str, Span]] = {}
        self.caps: dict[str, tuple[str, Span]] = {}
        self.flags: set[str] = set()

    def add_flag(self, flag: FlagDef, origin: str, span: Span) -> None:
        self.flags.add(flag.name)
        for name in flag.syscalls:
            self.syscalls.setdefault(name, (origin, span))
        for name, alternatives in flag.args:
            self.args[name].extend((alt, origin, span) for alt in alternatives)
        for name, err in flag.errno:
            self.errno.setdefault(name, (_seccomp.errno_number(err), origin, span))
        for key, access in PATH_ACCESS.items():
            for item in flag.list(key):
                self.add_path(item.value, access, origin, span)
        self.add_lists(flag.list, origin, span)

    def add_lists(self, get: Callable[[str], Sequence[Item[Any]]], origin: str, span: Span | None) -> None:
        for item in get("Protocols"):
            self.protocols.setdefault(item.value, (origin, span or item.span))
        for direction in ("Connect", "Bind"):
            for item in get(direction):
                self.add_ports(direction, item, origin, span)
        for item in get("SocketOptions"):
            self.sockopts.setdefault(item.value, (origin, span or item.span))
        for item in get("Capabilities"):
            self.caps.setdefault(item.value, (origin, span or item.span))

    def add_ports(self, direction: str, item: Item[PortSpec], origin: str, span: Span | None) -> None:
        spec = item.parsed
        self.count_net(spec, span or item.span)
        for port in spec.ports():
            if spec.host:  # http: is TCP carrying plain HTTP
                proto = "tcp" if spec.protocol == "http" else spec.protocol
                self.hosts.setdefault((spec.host, port, proto, spec.protocol == "http"), (origin, span or item.span))
            else:
                self.ports.setdefault((direction.lower(), port, spec.protocol, spec.address), (origin, span or item.span))

    def count_net(self, spec: PortSpec, span: Span) -> None:
        self.net_rules += spec.high - spec.low + 1
        if self.net_rules > MAX_NET_RULES:
            raise _too_many(span, "more port, host and peer rules than corral compiles (one per port of each range)", MAX_NET_RULES, "Landlock and nftables take one rule per port; use tcp:* for any port, or fewer ranges")

    def add_path(self, path: str, access: Access, origin: str, span: Span) -> None:
        if path not in self.paths and len(self.paths) >= MAX_PATHS:
            raise _too_many(span, "more paths than corral compiles", MAX_PATHS, "each Deny is compared with every allowed path, and apparmor_parser's DFA has at most 65,535 states; use globs (/srv/data/**) for many paths under one directory")
        if path in self.paths:
            old, o, s = self.paths[path]
            self.paths[path] = (old | access, o, s)
        else:
            self.paths[path] = (access, origin, span)


class _Lowering:
    """The state one lowering walk builds up: both sides and the audits."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.allow = _Grants()
        self.deny = _Grants()
        self.audits: list[AuditRule] = []
        self.imply_flags = True
        self.alpn_only = False
        self.write_exec: list[Item[str]] = []  # Filesystem.AllowWriteExec


#: How one key of the language lowers.
Handler = Callable[[_Lowering, KeySpec[Any]], None]


def _allow_flags(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.add_flag(ctx.policy.flags[item.value], f"flag {item.value}", item.span)


def _deny_flags(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.deny.add_flag(ctx.policy.flags[item.value], f"flag {item.value}", item.span)


def _allow_paths(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.add_path(item.value, PATH_ACCESS[spec.key], spec.dotted, item.span)


def _exec_profiles(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        program, profile = item.parsed.program, item.parsed.profile
        ctx.allow.add_path(program, PATH_ACCESS["Exec"], spec.dotted, item.span)
        ctx.allow.transitions[program] = profile


def _deny_paths(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.deny.add_path(item.value, Access.everything(), spec.dotted, item.span)


def _log_on_write(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    ctx.audits += [AuditRule(i.value, spec.dotted, i.span) for i in ctx.policy.get(spec)]


def _allow_write_exec(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    ctx.write_exec += ctx.policy.get(spec)


def _protocols(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.protocols.setdefault(item.value, ("", item.span))


def _ports_of(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.add_ports(spec.key, item, "", None)


def _deny_peers(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        peer: PortSpec = item.parsed
        ctx.deny.count_net(peer, item.span)
        for port in peer.ports():
            proto = "tcp" if peer.protocol == "http" else peer.protocol  # a denied name is denied whatever it carries
            ctx.deny.peers.setdefault((proto, port, peer.address, peer.host), (spec.dotted, item.span))


def _alpn(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.alpn.setdefault(item.value, item.span)


def _peer_denied(deny: PeerDenyRule, proto: str, port: int, address: str = "", host: str = "") -> bool:
    """Whether a deny rule covers every connection an allow rule permits."""
    import ipaddress

    if deny.protocol != proto or deny.port not in (port, ANY_PORT):
        return False
    if not deny.host and not deny.address:  # Deny tcp:PORT: every peer at that port
        return True
    if deny.host:
        if not host:
            return False
        if host.startswith("*."):  # a wildcard allow is covered by a wildcard deny at or above it
            return deny.host.startswith("*.") and (host == deny.host or host_matches(deny.host, host[2:]))
        return host_matches(deny.host, host)
    if not address:
        return False
    allowed, denied = ipaddress.ip_network(address, strict=False), ipaddress.ip_network(deny.address, strict=False)
    return allowed.version == denied.version and allowed.subnet_of(denied)  # type: ignore[arg-type]


def _socket_options(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.sockopts.setdefault(item.value, ("", item.span))


def _capabilities(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.caps.setdefault(item.value, ("", item.span))


def _deny_capabilities(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.deny.caps.setdefault(item.value, (spec.dotted, item.span))


def _syscalls(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.allow.syscalls.setdefault(item.value, (spec.dotted, item.span))


def _deny_syscalls(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    for item in ctx.policy.get(spec):
        ctx.deny.syscalls.setdefault(item.value, (spec.dotted, item.span))


def _alpn_only(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    ctx.alpn_only = ctx.policy.setting(spec, False)


def _imply_flags(ctx: _Lowering, spec: KeySpec[Any]) -> None:
    ctx.imply_flags = ctx.policy.setting(spec, True)


#: Every key of the language and how it lowers: the table ``lower`` walks.
#: A key without a row here cannot lower (``InternalError``); a test checks
#: that the rows are exactly ``schema.POLICY_KEYS``.
HANDLERS: dict[KeySpec[Any], Handler] = {
    **{schema.FLAGS[s]: _allow_flags for s in schema.CATEGORIES},
    **{schema.DENY_FLAGS[s]: _deny_flags for s in schema.CATEGORIES},
    **{spec: _allow_paths for spec in schema.FS_PATHS},
    schema.FS_EXEC_PROFILES: _exec_profiles,
    schema.FS_DENY: _deny_paths,
    schema.FS_LOG_ON_WRITE: _log_on_write,
    schema.FS_ALLOW_WRITE_EXEC: _allow_write_exec,
    schema.NET_PROTOCOLS: _protocols,
    schema.NET_CONNECT: _ports_of,
    schema.NET_BIND: _ports_of,
    schema.NET_SOCKET_OPTIONS: _socket_options,
    schema.NET_DENY: _deny_peers,
    schema.NET_ALPN: _alpn,
    schema.NET_ALPN_ONLY: _alpn_only,
    schema.USER_CAPABILITIES: _capabilities,
    schema.USER_DENY_CAPABILITIES: _deny_capabilities,
    schema.MISC_SYSCALLS: _syscalls,
    schema.MISC_DENY_SYSCALLS: _deny_syscalls,
    schema.MISC_IMPLY_FLAGS: _imply_flags,
}


def _collect(policy: Policy) -> _Lowering:
    ctx = _Lowering(policy)
    # Flags first: where a flag and a key grant the same thing, the flag is named as the origin.
    for spec in sorted(POLICY_KEYS, key=lambda k: k.item is not items.FLAG):
        handler = HANDLERS.get(spec)
        if handler is None:
            raise InternalError(f"{spec} has no lowering handler: it would load and then enforce nothing")
        handler(ctx, spec)
    allow = ctx.allow
    # Paths say where; these flags give the operations the paths need.
    flags = catalog.flags()
    implications = ((Access.READ, ("rpath",)), (Access.WRITE, ("wpath", "cpath")), (Access.EXEC, ("exec",)))
    for access, implied in implications if ctx.imply_flags else ():
        granting = [(o, s) for a, o, s in allow.paths.values() if access in a]
        if granting:
            origin, span = granting[0]
            for name in implied:
                allow.add_flag(flags[name], f"flag {name} (implied by {origin})", span)
    return ctx


def _check_dfa(files: list[FileRule], audits: list[AuditRule]) -> None:
    """Refuse a policy whose AppArmor profile the parser cannot build: the
    trie of every path's expansions estimates its file DFA's states (about
    one per distinct prefix character for literal paths, as measured)."""
    root: dict[str, Any] = {}
    nodes = 0
    rules: list[FileRule | AuditRule] = [*files, *audits]
    for rule in sorted(rules, key=lambda r: r.span):
        for path in globs.expand(rule.path):
            node = root
            for ch in path:
                nxt = node.get(ch)
                if nxt is None:
                    nxt = node[ch] = {}
                    nodes += 1
                node = nxt
        if nodes > MAX_DFA_ESTIMATE:
            raise _too_many(rule.span, f"the AppArmor profile would need about {nodes:,} DFA states by here", MAX_DFA_ESTIMATE, "apparmor_parser fails past 65,535 states; use globs (/srv/data/**) for many paths under one directory")


def _check_exec_modes(files: list[FileRule]) -> None:
    """Refuse two exec rules whose globs share a path but not a transition
    (one inherits, ix; the other runs under its own profile, px -> NAME):
    apparmor_parser fails with "profile has merged rule with conflicting x
    modifiers"). An exact path takes precedence over globs in the parser,
    so only two exact paths, or two globs, can clash (measured)."""
    execs = sorted((f for f in files if Access.EXEC in f.access), key=lambda f: f.span)
    for at, later in enumerate(execs):
        for earlier in execs[:at]:
            if earlier.transition != later.transition and globs.is_exact(earlier.path) == globs.is_exact(later.path) and globs.intersects(earlier.path, later.path):
                how = {"": "inherits this policy (Exec)"}
                raise PolicyError([Diagnostic(
                    later.span, "E025",
                    f"'{later.path}' and '{earlier.path}' match the same programs with different transitions",
                    f"'{earlier.path}' ({earlier.span}) {how.get(earlier.transition, f'runs under profile {earlier.transition}')}; '{later.path}' {how.get(later.transition, f'runs under profile {later.transition}')}: "
                    "AppArmor refuses the pair (conflicting x modifiers); name the programs exactly, or make the globs disjoint",
                )])


def lower(policy: Policy) -> IR:
    """Resolve a loaded policy into the IR."""
    try:
        return _lower(policy)
    except PolicyError as exc:  # a limit: shown with the policy's source line
        raise PolicyError(exc.diagnostics, {**policy.sources, **exc.sources}) from None


def _lower(policy: Policy) -> IR:
    ctx = _collect(policy)
    allow, deny = ctx.allow, ctx.deny
    protos, families, types = catalog.protocol_tables()

    # -- files ---------------------------------------------------------------
    denies = sorted(FileRule(p, Access.everything(), True, o or "Filesystem.Deny", s) for p, (_, o, s) in deny.paths.items())
    covering = globs.CoverIndex([d.path for d in denies])
    files = [
        FileRule(p, a, False, o, s, allow.transitions.get(p, ""))
        for p, (a, o, s) in allow.paths.items()
        if not covering.covered(p)
    ]
    audits = ctx.audits
    write_exec = check_write_exec(files, ctx.write_exec, policy.sources)
    _check_dfa(denies + files, audits)
    _check_exec_modes(files)

    # -- network ------------------------------------------------------------
    denied_pairs = {pair for name in deny.protocols for pair in protos[name].sockets}
    sockets: dict[tuple[str, str], SocketRule] = {}
    for name, (origin, span) in sorted(allow.protocols.items()):
        for fam, typ in protos[name].sockets:
            if (fam, typ) in denied_pairs:
                continue
            old = sockets.get((fam, typ))
            numbers = protos[name].numbers_for(fam)
            if old is not None:
                numbers = (ANY_PROTOCOL,) if ANY_PROTOCOL in old.protocols + numbers else tuple(sorted(set(old.protocols + numbers)))
                sockets[(fam, typ)] = SocketRule(fam, typ, old.origin, old.span, numbers)
            else:
                sockets[(fam, typ)] = SocketRule(fam, typ, origin or "Networking.Protocols", span, numbers)
    unported = tuple(sorted(n for n in allow.protocols if not protos[n].landlock_ports and all(p in sockets for p in protos[n].sockets)))
    # Deny rules are indexed by what they match on, so each allowed port is
    # decided in constant time: a range of N ports against M denied ones
    # took N x M comparisons (16 ranges of 1024 ports: minutes).
    denied_ports = set(deny.ports)
    peer_denies = sorted(PeerDenyRule(proto, port, addr, host, o, s) for (proto, port, addr, host), (o, s) in deny.peers.items())
    peers_at: dict[tuple[str, int], list[PeerDenyRule]] = defaultdict(list)
    for d in peer_denies:
        peers_at[(d.protocol, d.port)].append(d)

    def port_denied(direction: str, port: int, proto: str, address: str) -> bool:
        return any((direction, p, proto, a) in denied_ports for p in (port, ANY_PORT) for a in {"", address})

    def peer_denied(proto: str, port: int, address: str = "", host: str = "") -> bool:
        return any(_peer_denied(d, proto, port, address=address, host=host) for p in (port, ANY_PORT) for d in peers_at.get((proto, p), ()))

    ports = [
        PortRule(d, p, proto, addr, o or f"Networking.{d.capitalize()}", s)
        for (d, p, proto, addr), (o, s) in allow.ports.items()
        if not port_denied(d, p, proto, addr) and not (d == "connect" and peer_denied(proto, p, address=addr))
    ]
    hosts = [
        HostRule(host, port, proto, plain, origin=o or "Networking.Connect", span=s)
        for (host, port, proto, plain), (o, s) in allow.hosts.items()
        if not peer_denied(proto, port, host=host) and not port_denied("connect", port, proto, "")
    ]
    alpn = [AlpnRule(tuple(allow.alpn), ctx.alpn_only, origin="Networking.ALPN", span=next(iter(allow.alpn.values())))] if allow.alpn else []
    options = catalog.socket_options()
    sockopts = [
        SocketOptionRule(n, options[n].level, options[n].optname, o or "Networking.SocketOptions", s)
        for n, (o, s) in allow.sockopts.items()
        if n not in deny.sockopts
    ]

    # -- syscalls -----------------------------------------------------------
    denied_names = set(deny.syscalls) | set(deny.args) | set(deny.errno)
    rules: dict[str, SyscallRule] = {}
    for name, (origin, span) in allow.syscalls.items():
        rules[name] = SyscallRule(name, (), None, origin, span)
    for name, alts in allow.args.items():
        if name in rules:
            continue  # an unconditional allow absorbs argument filters
        unique = tuple(dict.fromkeys(a for a, _, _ in alts))
        rules[name] = SyscallRule(name, unique, None, alts[0][1], alts[0][2])
    if "socket" in rules:
        by_pair: tuple[Alternative, ...] = tuple(
            (ArgCmp(0, CmpOp.EQ, families[r.family]), ArgCmp(1, CmpOp.MASKED_EQ, types[r.type], _SOCK_TYPE_MASK))
            + (() if number == ANY_PROTOCOL else (ArgCmp(2, CmpOp.EQ, number),))
            for r in sorted(sockets.values())
            for number in r.protocols
        )
        socket = rules.pop("socket")
        if by_pair:
            rules["socket"] = SyscallRule("socket", by_pair, None, socket.origin, socket.span)
    if sockopts and "setsockopt" not in rules:
        by_option: tuple[Alternative, ...] = tuple((ArgCmp(1, CmpOp.EQ, r.level), ArgCmp(2, CmpOp.EQ, r.optname)) for r in sorted(sockopts))
        rules["setsockopt"] = SyscallRule("setsockopt", by_option, None, sockopts[0].origin, sockopts[0].span)
    for name, (err, origin, span) in allow.errno.items():
        rules.setdefault(name, SyscallRule(name, (), err, origin, span))
    refusals, lifted = guards.apply(rules, allow.flags - deny.flags)
    denied_rules = tuple(sorted(SyscallRule(n, (), None, *(deny.syscalls.get(n) or ("", Span(""))) ) for n in denied_names))
    syscalls = sorted(r for n, r in rules.items() if n not in denied_names)
    if "setsockopt" in denied_names:
        sockopts = []

    # -- capabilities ---------------------------------------------------------
    caps = [CapabilityRule(n, False, o or "User.Capabilities", s) for n, (o, s) in allow.caps.items() if n not in deny.caps]
    caps += [CapabilityRule(n, True, o, s) for n, (o, s) in deny.caps.items()]

    return IR(
        name=policy.name,
        description=policy.description,
        source=policy.path,
        files=tuple(sorted(denies + files)),
        audits=tuple(sorted(audits)),
        sockets=tuple(sorted(sockets.values())),
        ports=tuple(sorted(ports)),
        socket_options=tuple(sorted(sockopts)),
        syscalls=tuple(syscalls),
        capabilities=tuple(sorted(caps)),
        denied_syscalls=denied_rules,
        hosts=tuple(sorted(hosts)),
        peer_denies=tuple(peer_denies),
        alpn=tuple(alpn),
        refusals=tuple(sorted(refusals, key=lambda r: (r.name, str(r.alternatives)))),
        lifted=tuple(sorted(lifted)),
        write_exec=write_exec,
        unported=unported,
    )
