"""`corral explain FILE`: what a policy or profile lets a program do, in
plain words, with an exposure score from 0 (tight) to 10 (unconfined) in
the spirit of `systemd-analyze security`.

The score adds points for each exposure, with its reason; argument filters
earn credit (a filtered setsockopt costs a fraction of an unfiltered one),
and an AppArmor profile alone is charged for filtering no system call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import cast

from ..guards import guards
from ..policy import catalog
from .lint.rules._paths import SHARED_TMP, covers, touches
from .view import ENFORCERS, View

#: (system call, points unfiltered, points with argument filters, why)
RISKY_CALLS = (
    ("ptrace", 1.5, 1.5, "can trace and modify other processes"),
    ("mount", 1.5, 1.5, "can mount filesystems"),
    ("unshare", 1.0, 1.0, "can create namespaces"),
    ("setns", 1.0, 1.0, "can enter other namespaces"),
    ("clone", 1.0, 0.0, "can create namespaces through clone"),
    ("bpf", 1.5, 1.5, "can load BPF programs"),
    ("io_uring_setup", 0.5, 0.5, "can use io_uring, which bypasses system call filters"),
    ("keyctl", 0.3, 0.3, "can use the kernel keyring"),
    ("ioctl", 0.6, 0.1, "can send device-specific ioctls"),
    ("setsockopt", 0.4, 0.05, "can set socket options"),
    ("open", 0.2, 0.0, "can open files for writing by any path (paths are then up to AppArmor/Landlock)"),
    ("openat", 0.2, 0.0, "can open files for writing by any path (paths are then up to AppArmor/Landlock)"),
    ("execve", 0.3, 0.3, "can execute programs"),
)


@dataclass
class Exposure:
    score: float = 0.0
    reasons: list[tuple[float, str]] = field(default_factory=list)

    def add(self, points: float, why: str) -> None:
        if points > 0:
            self.reasons.append((round(points, 2), why))
            self.score = min(10.0, self.score + points)


def exposure(view: View) -> Exposure:
    e = Exposure()
    caps = catalog.capabilities()
    writable = view.grants("w") + view.grants("a")
    if any(f.path == "/**" for f in writable):
        e.add(3.0, "it may write every file")
    elif any(covers(f.paths, "/etc/passwd") for f in view.grants("r")):
        e.add(1.5, "it may read system configuration broadly")
    for t in SHARED_TMP:
        if any(touches(f.paths, t) for f in writable):
            e.add(1.5, f"it may write the shared {t.rstrip('/')}")
    if any(f.exec_mode and "u" in f.exec_mode.lower() for f in view.files if not f.deny):
        e.add(2.0, "it may run programs unconfined")
    for c in view.caps:
        if c.deny:
            continue
        if c.name == "ALL":
            e.add(5.0, "it keeps every capability")
        elif caps.get(c.name, {}).get("danger"):
            e.add(2.5 if c.name == "sys_admin" else 1.0, f"it keeps capability {c.name} ({caps[c.name]['meaning']})")
        else:
            e.add(0.2, f"it keeps capability {c.name}")
    nets = [n for n in view.nets if not n.deny]
    if any(n.type == "raw" and n.family != "netlink" or n.family == "packet" for n in nets):
        e.add(1.0, "it may open raw or packet sockets")
    ip = [n for n in nets if n.family in ("", "inet", "inet6")]
    if ip:
        if view.kind == "corral":
            if any(p == 0 for d, p, _ in view.ports if d == "connect") or (not view.ports and "connect" in view.syscalls):
                e.add(0.8, "it may connect to any TCP port")
            elif view.ports:
                e.add(0.2, f"it may connect to {len([p for p in view.ports if p[0] == 'connect'])} TCP port(s)")
        else:
            e.add(0.8, "it may connect anywhere (AppArmor 3 rules name no ports)")
        if view.inbound:
            e.add(0.7, "it may accept inbound connections")
    for path in view.write_exec:
        e.add(1.0, f"it may write {path}, which it may execute (Filesystem.AllowWriteExec: W^X waived)")
    for g in guards().values():
        if g.name in view.lifted:
            e.add(1.0, f"it may {g.meaning} (flag {g.lifted_by})")
    if view.kind == "apparmor":
        e.add(2.0, "no system call is filtered (AppArmor does not filter system calls; seccomp does)")
        for o in view.others:
            access = re.search(r"\(([^)]*)\)", o.text)
            passive = o.kind == "ptrace" and access and set(access.group(1).replace(",", " ").split()) <= {"read", "readby", "tracedby"}
            if o.kind in ("mount", "pivot_root", "ptrace") and not o.deny and not passive:
                e.add(1.5, f"`{o.text}` is allowed")
    else:
        for name, unfiltered, filtered, why in RISKY_CALLS:
            if name in view.syscalls:
                e.add(filtered if name in view.filtered else unfiltered, f"{name}: it {why}" + (" (argument-filtered)" if name in view.filtered else ""))
        e.add(min(1.5, len(view.syscalls) / 200), f"{len(view.syscalls)} system calls are allowed")
    return e


def _group(paths: list[str], limit: int = 12) -> str:
    if not paths:
        return "nothing"
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def families(calls: set[str], caps: set[str] | None = None) -> tuple[list[tuple[str, int, int]], list[str]]:
    """Allowed system calls grouped by the catalogue's flags: (flag, allowed,
    of), largest share first; and the calls no flag names. A flag that
    carries capabilities (ping, mount, ...) counts only if they are kept."""
    rows = []
    named: set[str] = set()
    for flag in catalog.flags().values():
        if caps is not None and any(i.value not in caps for i in flag.list("Capabilities")):
            continue
        mine = set(flag.syscalls) | {n for n, _ in flag.args}
        hit = calls & mine
        named |= hit
        if hit:
            rows.append((flag.name, len(hit), len(mine)))
    rows.sort(key=lambda r: (-r[1] / r[2], -r[1], r[0]))
    return rows, sorted(calls - named)


def summary(view: View) -> dict[str, object]:
    allow = [f for f in view.files if not f.deny and not (f.audit and view.kind == "corral")]
    read = sorted({f.path for f in allow if "r" in f.perms and "w" not in f.perms})
    write = sorted({f.path for f in allow if "w" in f.perms or "a" in f.perms})
    execute = sorted({f.path for f in allow if "x" in f.perms})
    denied = sorted({f.path for f in view.files if f.deny})
    logged = sorted({f.path for f in view.files if f.audit})
    nets = sorted({f"{n.family or 'any'} {n.type or 'any'}" for n in view.nets if not n.deny})
    caps = sorted({c.name for c in view.caps if not c.deny})
    e = exposure(view)
    out: dict[str, object] = {
        "name": view.name,
        "source": view.source,
        "kind": view.kind,
        "description": view.description,
        "files": {"read": read, "write": write, "execute": execute, "denied": denied, "logged_writes": logged},
        "network": {
            "sockets": nets,
            "connect_ports": sorted({p for d, p, _ in view.ports if d == "connect"}),
            "bind_ports": sorted({p for d, p, _ in view.ports if d == "bind"}),
            "connect_names": sorted({f"{h}:{p or '*'}" for h, p, _ in view.hosts}),
            "alpn": view.alpn,
            "inbound": bool(view.inbound),
            "socket_options": sorted({o for o, _ in view.socket_options}),
        },
        "capabilities": caps,
        "system_calls": sorted(view.syscalls) if view.kind == "corral" else "not filtered",
        "argument_filtered": sorted(view.filtered),
        "system_call_families": [{"flag": f, "allowed": a, "of": n} for f, a, n in families(set(view.syscalls), set(caps))[0]] if view.kind == "corral" else [],
        "exposure": {"score": round(e.score, 1), "reasons": [{"points": p, "why": w} for p, w in sorted(e.reasons, reverse=True)]},
    }
    if view.kind == "corral":
        out["enforcement"] = _enforcement(view)
        out["guards"] = [{"guard": g.name, "refuses": g.meaning, "lifted_by": g.lifted_by, "lifted": g.name in view.lifted} for g in guards().values()]
    return out


def _enforcement(view: View) -> dict[str, str]:
    """Per mechanism, how many rules of each kind it enforces (from the
    coverage the view computed once)."""
    rows: dict[str, str] = {}
    for target in ENFORCERS:
        counts: dict[str, int] = {}
        for rc in view.coverage:
            if rc.selected[target].level:
                kind = type(rc.rule).__name__.removesuffix("Rule").lower()
                counts[kind] = counts.get(kind, 0) + 1
        rows[target] = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"
    return rows


def markdown(view: View) -> str:
    s = summary(view)
    files, net, exp = s["files"], s["network"], s["exposure"]  # type: ignore[index]
    lines = [f"# {s['name']} ({s['source']})", ""]
    if s["description"]:
        lines += [str(s["description"]), ""]
    lines += ["## Files", "", f"- **May read**: {_group(files['read'])}", f"- **May write, create and delete**: {_group(files['write'])}",  # type: ignore[index]
              f"- **May execute**: {_group(files['execute'])}", f"- **Denied outright**: {_group(files['denied'])}"]  # type: ignore[index]
    if files["logged_writes"]:  # type: ignore[index]
        lines.append(f"- **Writes logged**: {_group(files['logged_writes'])}")  # type: ignore[index]
    lines += ["", "## Network", "", f"- **Sockets**: {', '.join(net['sockets']) or 'none'}"]  # type: ignore[index]
    if s["kind"] == "corral":
        lines.append(f"- **Outbound TCP ports**: {', '.join(map(str, net['connect_ports'])) or 'none'}".replace(": 0", ": any"))  # type: ignore[index]
        if net["connect_names"]:  # type: ignore[index]
            alpn = f" (TLS offering {' or '.join(net['alpn'])})" if net["alpn"] else ""  # type: ignore[index]
            lines.append(f"- **Outbound by name** (corral run's egress supervisor): {', '.join(net['connect_names'])}{alpn}")  # type: ignore[index]
        lines.append(f"- **Listening TCP ports**: {', '.join(map(str, net['bind_ports'])) or 'none'}")  # type: ignore[index]
        lines.append(f"- **Socket options it may set**: {', '.join(net['socket_options']) or 'none'}")  # type: ignore[index]
    lines.append(f"- **Inbound connections**: {'allowed' if net['inbound'] else 'not allowed'}")  # type: ignore[index]
    lines += ["", "## Capabilities", "", f"- {', '.join(s['capabilities']) or 'none: every capability is dropped'}", ""]  # type: ignore[arg-type]
    lines += ["## System calls", ""]
    if s["kind"] == "corral":
        calls = s["system_calls"]
        lines.append(f"- {len(calls)} allowed, everything else fails with EPERM; argument-filtered: {', '.join(s['argument_filtered']) or 'none'}")  # type: ignore[arg-type]
        rows, other = families(set(cast("list[str]", calls)), set(cast("list[str]", s["capabilities"])))
        lines.append("- by family (catalogue flag: allowed of its calls): " + ", ".join(f"{f} {a}/{n}" for f, a, n in rows[:14]) + (" ..." if len(rows) > 14 else ""))
        if other:
            lines.append(f"- named by no flag: {', '.join(other)}")
        lines += ["", "## Kept whatever else the policy allows", ""]
        for g in s["guards"]:  # type: ignore[attr-defined]
            if g["lifted"]:
                lines.append(f"- **lifted by flag {g['lifted_by']}**: it may {g['refuses']}")
            else:
                lift = f" (unless the policy names flag {g['lifted_by']})" if g["lifted_by"] else ""
                lines.append(f"- refused: {g['refuses']}{lift}")
        lines += ["", "## What enforces it", ""]
        lines += [f"- **{t}**: {what}" for t, what in s["enforcement"].items()]  # type: ignore[attr-defined]
    else:
        lines.append("- not filtered: an AppArmor profile does not restrict system calls")
    lines += ["", f"## Exposure: {exp['score']} / 10", ""]  # type: ignore[index]
    lines += [f"- +{r['points']}: {r['why']}" for r in exp["reasons"]] or ["- nothing found"]  # type: ignore[index]
    return "\n".join(lines) + "\n"


def to_json(view: View) -> str:
    return json.dumps(summary(view), indent=2)
