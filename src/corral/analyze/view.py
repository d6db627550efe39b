"""One view of "what does this grant" for corral policies and AppArmor
profiles alike, so lint, explain and diff are written once.

Paths are AppArmor globs with variables expanded; permissions are AppArmor
letters (r w a l k m x) whatever the source; every grant keeps its span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Span
from ..ir import SIGNAL_CALLS
from .aaparse import AAFile, AAProfile, parse_profile

_PERM_LETTERS = "rwalkmx"
#: The mechanisms `explain` reports on, and whose coverage a corral view keeps.
ENFORCERS = ("apparmor", "seccomp", "landlock", "capabilities")


@dataclass(frozen=True)
class FileGrant:
    path: str  # as written
    paths: tuple[str, ...]  # with variables expanded
    perms: str  # subset of "rwalkmx"
    span: Span
    deny: bool = False
    audit: bool = False
    owner: bool = False
    exec_mode: str = ""


@dataclass(frozen=True)
class NetGrant:
    family: str  # "" for any
    type: str  # "" for any
    span: Span
    deny: bool = False


@dataclass(frozen=True)
class CapGrant:
    name: str
    span: Span
    deny: bool = False


@dataclass(frozen=True)
class OtherGrant:
    kind: str  # ptrace, mount, umount, remount, pivot_root, change_profile, signal, unix, dbus, userns, ...
    text: str
    span: Span
    deny: bool = False


@dataclass
class View:
    source: str
    kind: str  # "corral" | "apparmor"
    name: str
    description: str = ""
    abi: str = ""
    comments: list[tuple[str, Span]] = field(default_factory=list)
    files: list[FileGrant] = field(default_factory=list)
    nets: list[NetGrant] = field(default_factory=list)
    caps: list[CapGrant] = field(default_factory=list)
    others: list[OtherGrant] = field(default_factory=list)
    syscalls: dict[str, Span] = field(default_factory=dict)  # corral: allowed system calls
    filtered: set[str] = field(default_factory=set)  # corral: allowed only with argument filters
    ports: list[tuple[str, int, Span]] = field(default_factory=list)
    hosts: list[tuple[str, int, Span]] = field(default_factory=list)  # corral: Connect names (protocol:host:port)
    alpn: list[str] = field(default_factory=list)
    socket_options: list[tuple[str, Span]] = field(default_factory=list)
    unenforceable: list[tuple[str, Span, str]] = field(default_factory=list)
    #: corral: how AppArmor, seccomp, Landlock and capabilities cover each rule
    coverage: list[Any] = field(default_factory=list)
    inbound: list[tuple[str, Span]] = field(default_factory=list)
    span: Span = field(default_factory=lambda: Span(""))
    #: corral: the guards (``corral.guards``) the policy lifted by naming their flag
    lifted: list[str] = field(default_factory=list)
    #: corral: executable paths Filesystem.AllowWriteExec lets be writable (W^X waived)
    write_exec: list[str] = field(default_factory=list)
    #: What outside this policy can widen what it grants (templates and files
    #: it extends, flags it uses: corral's catalogue changes between
    #: versions): a deny guards against their future versions even when
    #: nothing grants its target today. AppArmor includes are read as
    #: installed on this host and are not counted.
    widened_by: list[str] = field(default_factory=list)

    def grants(self, perm: str) -> list[FileGrant]:
        return [f for f in self.files if not f.deny and perm in f.perms]


def _perm_letters(perms: str) -> str:
    out = "".join(p for p in _PERM_LETTERS if p in perms)
    if any(c in perms for c in "ixXuUpPcC") and "x" not in out:
        out += "x"
    return out


def from_apparmor(result: AAFile, profile: AAProfile) -> View:
    view = View(result.path, "apparmor", profile.name, abi=result.abi, span=profile.span)
    view.comments = result.comments + profile.comments
    for rule in profile.rules:
        if rule.kind in ("all", "file") and not rule.path:  # `file,` or `all,`: every path
            view.files.append(FileGrant("/**", ("/**",), "rwalkmx", rule.span, rule.deny, rule.audit))
        elif rule.kind == "file":
            view.files.append(FileGrant(rule.path, tuple(result.expand(rule.path)), _perm_letters(rule.perms), rule.span, rule.deny, rule.audit, rule.owner, rule.exec_mode))
        elif rule.kind == "network":
            args = list(rule.args)
            family = next((a for a in args if a in ("inet", "inet6", "unix", "netlink", "packet", "bluetooth", "appletalk", "ax25", "ipx", "x25", "key", "alg")), "")
            sock = next((a for a in args if a in ("stream", "dgram", "raw", "seqpacket", "rdm", "packet")), "")
            sock = sock or {"tcp": "stream", "udp": "dgram", "icmp": "raw"}.get(next((a for a in args if a in ("tcp", "udp", "icmp")), ""), "")
            view.nets.append(NetGrant(family, sock, rule.span, rule.deny))
            if not rule.deny and family in ("", "inet", "inet6") and sock in ("", "stream", "dgram"):
                view.inbound.append((f"`{rule.text}` also allows bind, listen and accept: AppArmor 3 network rules have no direction", rule.span))
        elif rule.kind == "capability":
            names = rule.args or ("ALL",)
            view.caps += [CapGrant(n, rule.span, rule.deny) for n in names]
        else:
            view.others.append(OtherGrant(rule.kind, rule.text, rule.span, rule.deny))
    return view


def from_corral(path: str) -> View:
    """The view of a corral policy, as its compiled backends grant it."""
    from ..backends.apparmor import perms as apparmor_perms
    from ..compile import coverage_of
    from ..ir import Access
    from ..lower import lower
    from ..policy import globs, load_policy

    policy = load_policy(path)
    ir = lower(policy)
    view = View(path, "corral", ir.name, ir.description, abi="3.0", span=policy.span)
    view.widened_by = [f"Extends {e}" for e in policy.extends] + [f"flag {n}" for n in policy.flags]
    text = policy.sources.get(path, "")
    for lineno, line in enumerate(text.splitlines(), 1):
        if "#" in line:
            at = line.index("#")
            view.comments.append((line[at + 1 :].strip(), Span(path, lineno, at + 1, len(line) - at)))
    for f in ir.files:
        perms = "rwlkmx" if f.deny else _perm_letters(apparmor_perms(f.access))  # as the AppArmor backend writes them
        view.files.append(FileGrant(f.path, globs.expand(f.path), perms, f.span, f.deny, exec_mode="ix" if Access.EXEC in f.access else ""))
    for a in ir.audits:
        view.files.append(FileGrant(a.path, (a.path,), "w", a.span, audit=True))
    view.nets = [NetGrant(s.family, s.type, s.span) for s in ir.sockets]
    view.caps = [CapGrant(c.name, c.span, c.deny) for c in ir.capabilities]
    view.lifted = list(ir.lifted)
    view.write_exec = list(ir.write_exec)
    for r in ir.syscalls:
        if r.errno is None:
            view.syscalls[r.name] = r.span
            if r.alternatives and not r.outright:
                view.filtered.add(r.name)
    for name, kind in (("ptrace", "ptrace"), ("mount", "mount"), ("pivot_root", "pivot_root"), ("umount2", "umount")):
        if name in view.syscalls:
            view.others.append(OtherGrant(kind, f"system call {name}", view.syscalls[name]))
    if view.syscalls.keys() & SIGNAL_CALLS:
        view.others.append(OtherGrant("signal", "signal", next(view.syscalls[n] for n in SIGNAL_CALLS if n in view.syscalls)))
    view.ports = [(p.direction, p.port, p.span) for p in ir.ports if p.protocol == "tcp"]
    view.hosts = [(f"{'http' if h.plain_http else h.protocol}:{h.host}", h.port, h.span) for h in ir.hosts]
    view.alpn = list(ir.alpn[0].protocols) if ir.alpn else []
    view.socket_options = [(o.name, o.span) for o in ir.socket_options]
    for call in ("bind", "listen", "accept", "accept4"):
        if call in view.syscalls and any(s.family in ("inet", "inet6") and s.type in ("stream", "dgram") for s in ir.sockets):
            view.inbound.append((f"system call {call} is allowed (origin: {next(r.origin for r in ir.syscalls if r.name == call)})", view.syscalls[call]))
    view.coverage = coverage_of(ir, list(ENFORCERS))
    for rc in view.coverage:
        if rc.selected["apparmor"].level == 0:
            others = {**rc.others, **{t: c for t, c in rc.selected.items() if t != "apparmor"}}
            view.unenforceable.append((rc.describe(), rc.rule.span, ", ".join(t for t, c in others.items() if c.level)))
    return view


def is_corral_policy(path: str) -> bool:
    return path.endswith(".toml")


def views_of(path: str, search: tuple[str, ...] = ("/etc/apparmor.d",)) -> tuple[list[View], list]:  # type: ignore[type-arg]
    """Every profile in an AppArmor file (children included), or the one
    policy of a corral file; with the reader's diagnostics. Any other kind
    of file (JSON, binary, corral's other artifacts) is refused."""
    from .kinds import POLICY, require_analysable

    if require_analysable(path) == POLICY:
        return [from_corral(path)], []
    result = parse_profile(Path(path), search)
    views = [from_apparmor(result, p) for top in result.profiles for p in top.all_profiles()]
    return views, result.diagnostics
