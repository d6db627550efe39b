"""What ``corral run --log`` saw, kept bounded, summarised as suggestions
and written as a record ``corral learn --into POLICY`` merges.

Bounded: a notification is reduced at once to what a suggestion depends
on (the call, plus the arguments a catalogue filter or a capability check
looks at: clone's namespace bits, ioctl's request, setsockopt's pair,
socket's family and type), and at most ``MAX_DISTINCT`` such keys are
kept; the rest are counted. A program making millions of distinct denied
calls costs the supervisor the same memory as one making a few.

Capabilities: in learning mode the calls that need one when they change
another id or bind a low port (``CAPABILITY_CALLS``) always come to the
supervisor, which reads the caller's ids and effective capabilities from
``/proc/PID/status``; a call that would fail with EPERM for lack of a
capability is named, with the capability.

What it cannot see: Landlock's denials (paths, TCP ports). The program
gets EACCES from the kernel and no system call is refused by seccomp; the
kernel reports them only to the audit subsystem (Landlock ABI 7, when
audit is enabled), from which ``corral learn`` reads them.

The record is JSON lines, one object per event in learning's vocabulary
(``learn.events``), after a header line ``{"corral_run_log": 1, ...}``.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from typing import Any

#: Distinct (call, reduced arguments) kept; more are counted, not stored.
MAX_DISTINCT = 4096
#: Calls that need a capability when they change another id or bind a low port.
CAPABILITY_CALLS = {
    "setuid": ("setuid", "uid", (0,)), "setreuid": ("setuid", "uid", (0, 1)), "setresuid": ("setuid", "uid", (0, 1, 2)),
    "setfsuid": ("setuid", "uid", (0,)), "setgid": ("setgid", "gid", (0,)), "setregid": ("setgid", "gid", (0, 1)),
    "setresgid": ("setgid", "gid", (0, 1, 2)), "setfsgid": ("setgid", "gid", (0,)), "setgroups": ("setgid", "", ()),
    "chown": ("chown", "owner", (1, 2)), "lchown": ("chown", "owner", (1, 2)), "fchown": ("chown", "owner", (1, 2)),
    "fchownat": ("chown", "owner", (2, 3)), "bind": ("net_bind_service", "port", (1,)),
}  # fmt: skip
_CAP_BITS = {"chown": 0, "setgid": 6, "setuid": 7, "net_bind_service": 10}
_NS_BITS = 0x7E020080  # CLONE_NEW*: what the threads/proc filters look at
_KEEP = {"clone": lambda a: (a[0] & _NS_BITS, 0, 0), "ioctl": lambda a: (0, a[1] & 0xFFFFFFFF, 0),
         "setsockopt": lambda a: (0, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF), "socket": lambda a: (a[0] & 0xFFFFFFFF, a[1] & 0xF, 0),
         "open": lambda a: (0, a[1] & 0x243, 0), "openat": lambda a: (0, 0, a[2] & 0x243)}  # fmt: skip
_UNSIGNED_ALL = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


class Seen:
    """Notifications, reduced and counted within a fixed bound."""

    def __init__(self, names: "dict[int, str] | None" = None) -> None:
        self.calls: Counter[tuple[int, int, int, int]] = Counter()
        self.capabilities: Counter[tuple[str, str]] = Counter()
        self.dropped = 0
        self._names = names if names is not None else {}

    def name(self, nr: int) -> str:
        if nr not in self._names and len(self._names) < 1024:
            self._names[nr] = _resolve(nr)
        return self._names.get(nr) or f"syscall #{nr}"

    def add(self, nr: int, args: Any, pid: int, allowed: bool) -> None:
        """One notification; ``allowed``: the policy's filter lets it through
        (it came here only for the capability check)."""
        name = self.name(nr)
        if name in CAPABILITY_CALLS:
            need = _capability_needed(name, [int(a) for a in args], pid)
            if need:
                key = need
                if key in self.capabilities or len(self.capabilities) < MAX_DISTINCT:
                    self.capabilities[key] += 1
                else:
                    self.dropped += 1
        if allowed:
            return
        keep = _KEEP.get(name)
        key4 = (nr, *keep([int(a) for a in args[:3]])) if keep else (nr, 0, 0, 0)
        if key4 in self.calls or len(self.calls) < MAX_DISTINCT:
            self.calls[key4] += 1  # type: ignore[index]
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self.calls or self.capabilities or self.dropped)


def _resolve(nr: int) -> str:
    from .. import _seccomp

    try:
        name: str = _seccomp._lib().resolve_syscall(getattr(_seccomp._lib().Arch, _seccomp.native_arch().upper()), nr).decode()
        return name
    except ValueError:
        return f"syscall #{nr}"


def _status(pid: int) -> dict[str, list[int]]:
    """Uid, Gid, Groups and CapEff of a process (empty if it is gone)."""
    out: dict[str, list[int]] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Uid", "Gid", "Groups"):
                    out[key] = [int(v) for v in value.split()]
                elif key == "CapEff":
                    out[key] = [int(value.strip(), 16)]
    except (OSError, ValueError):
        pass
    return out


def _low_port(pid: int, address: int) -> int | None:
    """The port of a sockaddr_in/in6 in the caller's memory, if readable."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            raw = mem.read(4)
    except (OSError, ValueError, OverflowError):
        return None
    if len(raw) < 4 or struct.unpack("<H", raw[:2])[0] not in (2, 10):  # AF_INET, AF_INET6
        return None
    port: int = struct.unpack(">H", raw[2:4])[0]
    return port


def _capability_needed(name: str, args: list[int], pid: int) -> tuple[str, str] | None:
    """(capability, what) if this call will fail with EPERM for lack of it."""
    cap, kind, indexes = CAPABILITY_CALLS[name]
    status = _status(pid)
    if not status or status.get("CapEff", [0])[0] >> _CAP_BITS[cap] & 1:
        return None
    if kind == "port":
        port = _low_port(pid, args[1])
        try:
            start = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
        except (OSError, ValueError):
            start = 1024
        return (cap, f"bind to port {port}") if port is not None and 0 < port < start else None
    if kind == "":
        return (cap, f"{name}")
    if kind == "owner":
        owner, group = (args[i] & 0xFFFFFFFF for i in indexes)
        euid = status.get("Uid", [0, 0])[1]
        groups = set(status.get("Gid", [])) | set(status.get("Groups", []))
        if owner not in _UNSIGNED_ALL and owner != euid or group not in _UNSIGNED_ALL and group not in groups:
            return (cap, f"{name} to owner {owner if owner != 0xFFFFFFFF else -1}:{group if group != 0xFFFFFFFF else -1}")
        return None
    own = set(status.get("Uid" if kind == "uid" else "Gid", []))
    wanted = [args[i] & 0xFFFFFFFF for i in indexes]
    if any(w not in _UNSIGNED_ALL and w not in own for w in wanted):
        return (cap, f"{name}({', '.join(str(w) for w in wanted)})")
    return None


# -- the summary and the record -------------------------------------------------


def suggestions(plan: dict[str, Any], seen: Seen) -> Counter[str]:
    """What would have been denied, as changes to the policy (prose)."""
    from ..learn.suggest import suggest
    from ..policy import catalog

    options = {(o.level, o.optname): o.name for o in catalog.socket_options().values()}
    _, families, types = catalog.protocol_tables()
    family_names = {v: k for k, v in families.items()}
    type_names = {v: k for k, v in types.items()}
    out: Counter[str] = Counter()
    for (nr, a0, a1, a2), count in seen.calls.items():
        name = seen.name(nr)
        if name in plan["denied_syscalls"]:
            origin = plan["denied_syscalls"][name] or "a DenyFlags entry"
            out[f"{name} is denied by {origin}: remove it there to allow it"] += count
        elif name == "setsockopt":
            opt = options.get((a1, a2))
            out[f'add "{opt}" to [Networking] SocketOptions (setsockopt)' if opt else f"setsockopt level {a1} option {a2} has no corral name: it stays denied"] += count
        elif name == "socket" and name in plan["syscall_names"]:
            sock = f"{family_names.get(a0, a0)} {type_names.get(a1 & 0xF, a1 & 0xF)}"
            out[f"allow {sock} sockets: add its protocol to [Networking] Protocols (socket)"] += count
        else:
            s = suggest(name, (a0, a1, a2) if name in _KEEP else None)
            what = f"{name} request {a1:#x}" if name == "ioctl" else name
            if s.flag is not None:
                extra = f" -- {s.warning}" if s.warning else ""
                out[f'add flag "{s.flag.name}" to [{s.flag.category}] Flags ({what}), or "{name}" to [Misc] Syscalls{extra}'] += count
            elif name == "ioctl":
                out[f'{what}: no flag filters this request; "ioctl" in [Misc] Syscalls would allow every request'] += count
            else:
                out[f'add "{name}" to [Misc] Syscalls'] += count
    for (cap, what), count in seen.capabilities.items():
        out[f'{what} fails with EPERM without capability {cap}: add "{cap}" to [User] Capabilities'] += count
    if seen.dropped:
        out[f"(more distinct calls than the {MAX_DISTINCT} kept: counted, not itemised)"] += seen.dropped
    return out


def summarize(plan: dict[str, Any], seen: Seen) -> str:
    if not seen:
        return "corral run --log: nothing was outside the policy's system calls"
    found = suggestions(plan, seen)
    lines = [f"corral run --log: {sum(found.values())} call(s) the policy would have denied:"]
    lines += [f"  {what}  x{count}" for what, count in found.most_common()]
    return "\n".join(lines)


LANDLOCK_BLIND = (
    "corral run --log: Landlock's denials (files, TCP ports) are not seen here: the program gets EACCES;"
    " learn paths with `corral trace`, or from the audit log where audit is enabled (Landlock ABI 7 logs them)"
)


def record(plan: dict[str, Any], seen: Seen, cmd: list[str]) -> str:
    """The JSON-lines record of SEEN, for ``corral learn --into POLICY``."""
    from ..policy import catalog

    options = {(o.level, o.optname): o.name for o in catalog.socket_options().values()}
    _, families, types = catalog.protocol_tables()
    family_names = {v: k for k, v in families.items()}
    type_names = {v: k for k, v in types.items()}
    header = {"corral_run_log": 1, "policy": plan["name"], "source": plan["source"], "cmd": cmd, "dropped": seen.dropped, "not_seen": LANDLOCK_BLIND.split(": ", 1)[1]}
    lines = [json.dumps(header)]
    for (nr, a0, a1, a2), count in sorted(seen.calls.items()):
        name = seen.name(nr)
        if name.startswith("syscall #"):
            continue
        if name == "setsockopt" and (a1, a2) in options:
            lines.append(json.dumps({"event": "sockopt", "name": options[(a1, a2)], "count": count}))
        elif name == "socket" and a0 in family_names and a1 in type_names:
            lines.append(json.dumps({"event": "socket", "family": family_names[a0], "type": type_names[a1], "count": count}))
        lines.append(json.dumps({"event": "call", "name": name, "args": [a0, a1, a2] if name in _KEEP else None, "count": count}))
    for (cap, what), count in sorted(seen.capabilities.items()):
        lines.append(json.dumps({"event": "capability", "name": cap, "why": what, "count": count}))
    return "\n".join(lines) + "\n"


def write_record(path: str, text: str) -> None:
    """Write the record atomically (a record is replaced, never appended to)."""
    from pathlib import Path

    from ..fsutil import write_atomic

    write_atomic(Path(path), text.encode(), force=True)
