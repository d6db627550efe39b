"""Turn collected events into a readable policy: flags first, then what no
flag covers, every line with its evidence.

Choices, in order:

* ``dns`` if the program read the resolver's configuration and used IP
  sockets, or used port 53 (it brings the resolver's files).
* Path flags (``shared-libs``, ``tls-certs``, ``locale``, ``devices``) when
  at least one traced path falls under them; those paths are then left out.
* System calls: a greedy cover by catalogue flags (network flags such as
  ``outgoing`` included), taking a flag only while it brings more calls the
  program used than calls it did not, and keeping the allowed set within
  1.25x of the used set; the rest are listed in ``Misc.Syscalls``. Tightness
  wins over brevity: the list is long where flags would widen too much.
* Paths: created files become ``DIR/*`` (their names vary between runs),
  writes in two or more subdirectories of one directory become ``DIR/**``,
  four or more files read in one directory become ``DIR/*``; everything
  else stays a literal path. Writes in shared temporary directories get a
  comment suggesting a private runtime directory.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field

from ..ir import IR, Access
from ..policy import catalog, globs
from .events import Capability, Collected, File, Port, SockOpt, Socket, Syscall

SHARED_TMP = ("/tmp/", "/var/tmp/", "/dev/shm/")
#: Paths worth a second look before a learned policy grants them.
SENSITIVE = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/", "/home/*/.ssh/", "/proc/sysrq-trigger", "/proc/kcore", "/sys/kernel/")
_PATH_FLAGS = ("shared-libs", "tls-certs", "locale", "devices")
_RESOLVER_FILES = {"/etc/resolv.conf", "/etc/host.conf", "/etc/gai.conf"}
_PROTOCOL = {("inet", "stream"): "tcp", ("inet6", "stream"): "tcp", ("inet", "dgram"): "udp", ("inet6", "dgram"): "udp",
             ("unix", "stream"): "unix", ("unix", "dgram"): "unix", ("unix", "seqpacket"): "unix",
             ("netlink", "dgram"): "netlink", ("netlink", "raw"): "netlink", ("inet", "raw"): "raw", ("inet6", "raw"): "raw",
             ("packet", "raw"): "packet", ("packet", "dgram"): "packet"}  # fmt: skip
MAX_WIDENING = 1.25


@dataclass
class Line:
    value: str
    why: str


@dataclass
class Additions:
    """Policy additions: ``section -> key -> lines``, plus notes."""

    keys: dict[tuple[str, str], list[Line]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    used_syscalls: int = 0
    allowed_syscalls: int = 0

    def add(self, section: str, key: str, value: str, why: str) -> None:
        if not any(line.value == value for line in self.keys[(section, key)]):
            self.keys[(section, key)].append(Line(value, why))

    def empty(self) -> bool:
        return not any(self.keys.values())


def _escape(path: str) -> str | None:
    """A concrete path as a glob, or None if no policy can name it."""
    if any(ord(ch) < 0x20 or ch == '"' for ch in path) or "@{" in path:
        return None
    out = "".join("\\" + ch if ch in "*?[]{}\\" else ch for ch in path)
    try:
        globs.validate(out)
    except globs.GlobError:
        return None
    return out


def _base_allows(base: IR | None, path: str, access: Access) -> bool:
    if base is None:
        return False
    if any(f.deny and globs.matches(f.path, path) for f in base.files):
        return False
    return any(not f.deny and access in f.access and globs.matches(f.path, path) for f in base.files)


def synthesize(c: Collected, base: IR | None = None) -> Additions:
    out = Additions()
    flags = catalog.flags()
    base_calls = {r.name for r in base.syscalls} if base else set()
    chosen: list[str] = []

    # -- network ------------------------------------------------------------
    sockets = [e for e in c.events if isinstance(e, Socket)]
    ports = [e for e in c.events if isinstance(e, Port)]
    used = {e.name for e in c.events if isinstance(e, Syscall)}
    files = [e for e in c.events if isinstance(e, File)]
    if any(p.port == 53 for p in ports) or any(f.path in _RESOLVER_FILES for f in files) and any(s.family in ("inet", "inet6") for s in sockets):
        chosen.append("dns")  # brings the resolver's files; its calls are counted below
    base_protocols = {(s.family, s.type) for s in base.sockets} if base else set()
    for s in sockets:
        proto = _PROTOCOL.get((s.family, s.type))
        if proto and (s.family, s.type) not in base_protocols:
            out.add("Networking", "Protocols", proto, c.why(s))
    base_ports = {(p.direction, p.port) for p in base.ports} if base else set()
    for p in sorted(ports, key=lambda p: (p.direction, p.port)):
        if p.protocol != "tcp" or ("connect" if p.direction == "connect" else "bind", p.port) in base_ports:
            continue
        key = "Connect" if p.direction == "connect" else "Bind"
        out.add("Networking", key, "tcp:*" if p.port == 0 else f"tcp:{p.port}", f"{c.why(p)}" + (" (port 0: any free port)" if p.port == 0 else ""))
    options = catalog.socket_options()
    base_opts = {o.name for o in base.socket_options} if base else set()
    for o in (e for e in c.events if isinstance(e, SockOpt)):
        if o.name in options and o.name not in base_opts:
            out.add("Networking", "SocketOptions", o.name, c.why(o))
        elif o.name not in options:
            out.notes.append(f"setsockopt {o.name} has no corral name: setsockopt is allowed outright in [Misc] Syscalls")
            out.add("Misc", "Syscalls", "setsockopt", f"{o.name} ({c.why(o)})")
    for cap in (e for e in c.events if isinstance(e, Capability)):
        out.add("User", "Capabilities", cap.name, c.why(cap))

    # -- files ------------------------------------------------------------------
    remaining = _file_flags(files, flags, chosen, base)
    if any(f.mode == "x" for f in files):
        chosen.append("exec")
    _paths(out, c, remaining, base)

    # -- system calls -------------------------------------------------------------
    for name in chosen:
        out.add(flags[name].category or "Misc", "Flags", name, "chosen from what the program did")
    _cover_syscalls(out, used - base_calls, flags, chosen)
    out.used_syscalls = len(used)
    return out


def _file_flags(files: list[File], flags: dict, chosen: list[str], base: IR | None) -> list[File]:
    """Pick path flags that cover traced paths; return the paths left over."""
    left = list(files)
    for name in _PATH_FLAGS:
        flag = flags[name]
        patterns = [(i.value, key) for key in ("ReadOnly", "Writable", "Libraries") for i in flag.list(key)]
        covered = [f for f in left if f.mode in "rdm" and any(globs.matches(p, f.path) for p, _ in patterns)]
        if name == "devices":
            covered = [f for f in left if any(globs.matches(p, f.path) for p, k in patterns if k == "Writable" or f.mode in "rd")]
        if covered and not all(_base_allows(base, f.path, Access.READ) for f in covered):
            chosen.append(name)
            left = [f for f in left if f not in covered]
        elif covered:
            left = [f for f in left if f not in covered]
    return left


def _paths(out: Additions, c: Collected, files: list[File], base: IR | None) -> None:
    created_dirs: dict[str, set[str]] = defaultdict(set)
    writes: list[File] = []
    reads: dict[str, list[File]] = defaultdict(list)
    for f in files:
        if any(globs.matches(s.rstrip("/") + ("/**" if s.endswith("/") else ""), f.path) for s in SENSITIVE):
            out.notes.append(f"{f.path} is sensitive ({c.why(f)}): make sure the program really needs it")
        if f.mode == "x":
            path = _escape(f.path)
            if path and not _base_allows(base, f.path, Access.EXEC):
                out.add("Filesystem", "Exec", path, c.why(f))
        elif f.mode == "c":
            created_dirs[os.path.dirname(f.path.rstrip("/")) or "/"].add(f.path)
        elif f.mode == "w":
            writes.append(f)
        else:
            reads[os.path.dirname(f.path)].append(f)
    # created names vary between runs: their directory is what is writable,
    # and two or more such subdirectories of one directory make it DIR/**
    by_parent: dict[str, list[str]] = defaultdict(list)
    for directory in created_dirs:
        by_parent[os.path.dirname(directory)].append(directory)
    writable: dict[str, str] = {}
    for parent, children in by_parent.items():
        if len(children) >= 2:
            writable[parent.rstrip("/") + "/**"] = f"files created in {len(children)} of its subdirectories"
    for directory, paths in created_dirs.items():
        if not any(globs.matches(w, directory + "/x") for w in writable):
            writable[directory.rstrip("/") + "/*"] = f"{len(paths)} file(s) created or removed here"
    for f in writes:
        if not any(globs.matches(p.replace("\\", ""), f.path) for p in writable):
            writable.setdefault(f.path, c.why(f))
    for glob, why in sorted(writable.items()):
        escaped = _escape(glob.removesuffix("/**").removesuffix("/*"))
        if escaped is None:
            continue
        value = escaped + glob[len(glob.removesuffix("/**").removesuffix("/*")) :]
        if _base_allows(base, glob.replace("/**", "/x").replace("/*", "/x"), Access.WRITE):
            continue
        out.add("Filesystem", "Writable", value, why)
        if any((glob + "/").startswith(t) for t in SHARED_TMP):
            out.notes.append(
                f"{glob} is in a shared, world-writable directory: a private runtime directory (Writable = [\"/run/NAME/**\"], "
                "made by systemd's RuntimeDirectory=) would not let other programs plant or read files there"
            )
    for directory, fs in sorted(reads.items()):
        distinct = sorted({f.path for f in fs})
        if any(globs.matches(p.replace("\\", ""), d) for p in writable for d in distinct):
            distinct = [d for d in distinct if not any(globs.matches(p.replace("\\", ""), d) for p in writable)]
        distinct = [d for d in distinct if not _base_allows(base, d, Access.READ)]
        if len(distinct) >= 4:
            escaped = _escape(directory)
            if escaped:
                out.add("Filesystem", "ReadOnly", escaped.rstrip("/") + "/*", f"{len(distinct)} files read here")
                continue
        for d in distinct:
            f = next(x for x in fs if x.path == d)
            escaped = _escape(d + ("/" if f.mode == "d" and d != "/" else ""))
            if escaped:
                out.add("Filesystem", "ReadOnly", escaped, c.why(f))


def _cover_syscalls(out: Additions, used: set[str], flags: dict, chosen: list[str]) -> None:
    allowed: set[str] = set()
    for name in chosen:
        allowed |= _flag_calls(flags[name])
    remaining = used - allowed
    budget = int(len(used) * MAX_WIDENING)
    candidates = [f for f in flags.values() if f.name not in chosen and not f.list("Capabilities") and f.category != "Misc"]
    while remaining:
        best, best_score = None, 0
        for flag in candidates:
            calls = _flag_calls(flag)
            gain = len(calls & remaining)
            extra = len(calls - used - allowed)
            if gain <= extra or len(allowed | calls) > budget:
                continue
            if gain - extra > best_score:
                best, best_score = flag, gain - extra
        if best is None:
            break
        candidates.remove(best)
        calls = _flag_calls(best)
        out.add(best.category or "Misc", "Flags", best.name, f"covers {', '.join(sorted(calls & remaining)[:4])}{' ...' if len(calls & remaining) > 4 else ''}")
        allowed |= calls
        remaining -= calls
    for name in sorted(remaining):
        out.add("Misc", "Syscalls", name, "used; no flag covers it closely")
    out.allowed_syscalls = len(allowed | used)


def _flag_calls(flag) -> set[str]:  # type: ignore[no-untyped-def]
    return set(flag.syscalls) | {n for n, _ in flag.args} | {n for n, _ in flag.errno}


SECTION_ORDER = ("Networking", "Filesystem", "Runtime", "User", "Misc")
KEY_ORDER = ("Flags", "Protocols", "Connect", "Bind", "SocketOptions", "ReadOnly", "Writable", "Exec", "Libraries", "Capabilities", "Syscalls")


def render(additions: Additions, *, name: str, description: str, header: list[str], extends: list[str] | None = None, imply_flags: bool | None = None) -> str:
    """A complete policy file for the additions, with evidence comments."""
    lines = [f"# {h}" for h in header]
    lines += [f"Name = {json.dumps(name)}", f"Description = {json.dumps(description)}"]
    if extends:
        lines.append(f"Extends = [{', '.join(json.dumps(e) for e in extends)}]")
    for section in SECTION_ORDER:
        keys = [(k, additions.keys.get((section, k), [])) for k in KEY_ORDER]
        keys = [(k, v) for k, v in keys if v]
        if not keys and not (section == "Misc" and imply_flags is not None):
            continue
        lines += ["", f"[{section}]"]
        if section == "Misc" and imply_flags is not None:
            lines.append(f"ImplyFlags = {str(imply_flags).lower()}  # the system calls below are exactly what was traced")
        for key, values in keys:
            lines.append(f"{key} = [")
            lines += [f"  {json.dumps(v.value)},  # {v.why}" for v in values]
            lines.append("]")
    if additions.notes:
        lines.append("")
        lines += [f"# NOTE: {n}" for n in dict.fromkeys(additions.notes)]
    return "\n".join(lines) + "\n"
