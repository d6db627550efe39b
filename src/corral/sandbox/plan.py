"""A run plan: everything ``corral run`` applies, computed once from the IR.

The plan is plain data (str, int, bytes, lists, dicts) so it can be cached
with ``marshal`` and applied by ``sandbox.apply`` without importing the
policy loader, the backends or libseccomp: the BPF inside was built by
libseccomp when the plan was made. A cached plan is used only while every
file it was made from is unchanged (the policy files byte for byte: `cp -p`
keeps size and mtime; corral's own files by inode and ctime, which no copy
preserves), it belongs to the caller and nobody else can write it.

No sandbox can write the cache: ``apply`` denies the cache directory in
every plan it applies (``cache_dirs``: this run's and every one a run with
another environment would read), whatever the policy grants, and the
cache is not used at all on a kernel without Landlock, where nothing could
keep a confined program of the same user away from it.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing or pathlib on the start-up path
    from typing import Any

PLAN_VERSION = 7
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

Plan = dict
#: Calls that can truncate a file (an io_uring ring opens with O_TRUNC too).
TRUNCATING_CALLS = frozenset({"truncate", "ftruncate", "open", "openat", "openat2", "creat", "io_uring_setup"})


def _contents(paths: list[str]) -> list[tuple[str, bytes]]:
    """The policy files a plan was made from, byte for byte."""
    out = []
    for p in paths:
        with open(p, "rb") as fh:
            out.append((os.path.abspath(p), fh.read()))
    return out


def _stamp(paths: list[str]) -> list[tuple[str, int, int, int, int]]:
    """corral's own files by identity: a replaced or rewritten file gets a
    new inode or ctime even when its size and mtime are kept."""
    out = []
    for p in paths:
        p = os.path.abspath(p)
        st = os.stat(p)
        out.append((p, st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size))
    return out


def _package_files() -> list[str]:
    """Files whose change must invalidate every cached plan: corral's data
    and the modules that compute plans."""
    from pathlib import Path

    package = Path(_PACKAGE)
    return [str(p) for p in sorted(package.rglob("*.toml"))] + [str(p) for p in sorted(package.rglob("*.py"))]


def build(ir: "Any", source_files: list[str], *, log_mode: bool = False) -> Plan:
    """Compute a plan from an IR (imports the backends and libseccomp)."""
    from .. import _seccomp
    from ..backends.landlock import to_document
    from ..compile import coverage_of
    from ..ir import Access
    from ..policy import catalog, globs

    doc, _ = to_document(ir)
    syscalls = {r.name: r for r in ir.syscalls}
    allowed = {n for n, r in syscalls.items() if r.errno is None}  # outright or through Args
    tcp_allowed = any(s.type == "stream" and s.family in ("inet", "inet6") for s in ir.sockets)
    ruleset = doc["ruleset"][0]

    requirements: list[tuple[int, str]] = [(1, "filesystem rules")]
    # Allowed in any form: an Args filter narrows a call's arguments, never
    # the file it lands on (O_RDONLY|O_TRUNC passes a "read-only" filter and
    # is a read to Landlock below ABI 3; an allowed ioctl request reaches a
    # device's driver below ABI 5, corral never grants ioctl_dev).
    if allowed & TRUNCATING_CALLS:
        requirements.append((3, "restricting truncation of files (truncate right)"))
    if tcp_allowed and ruleset["handledAccessNet"]:
        requirements.append((4, "TCP port rules (Networking.Connect / Networking.Bind)"))
    unix = any(s.family == "unix" for s in ir.sockets)
    if "ioctl" in allowed:
        requirements.append((5, "restricting ioctl on devices (ioctl_dev right)"))
    if ruleset["scoped"]:
        what = " and ".join({"signal": "signals", "abstract_unix_socket": "abstract unix sockets"}.get(s, s) for s in ruleset["scoped"])
        requirements.append((6, f"keeping {what} inside the sandbox (Landlock scopes)"))

    if any(_seccomp.SELF_PID_PLACEHOLDER in (c.value & 0xFFFFFFFF, c.value >> 32, c.mask & 0xFFFFFFFF, c.mask >> 32) for r in ir.syscalls for a in r.alternatives for c in a):
        from .apply import SandboxError

        raise SandboxError(f"an Args filter of the policy compares with {_seccomp.SELF_PID_PLACEHOLDER:#x}, the value corral run writes the program's own pid over", "compare with another value; this one is reserved")
    bpf = _seccomp.build(ir.syscalls, self_pid=_seccomp.SELF_PID_PLACEHOLDER).export_bpf()

    from ..backends.egress import document as egress_document

    coverage = coverage_of(ir, ["seccomp", "landlock", "capabilities", *(["egress"] if ir.supervised else [])])
    deny_nodes, deny_patterns, deny_unsupported = _split_denies(coverage)
    exec_rules = [f.path for f in ir.files if not f.deny and Access.EXEC in f.access]
    paths, glob_grants, spans = _grants(ir)
    caps = catalog.capabilities()
    gaps = [rc for rc in coverage if rc.best == 0]

    plan: Plan = {
        "version": PLAN_VERSION,
        "python": sys.version,
        "name": ir.name,
        "source": ir.source,
        "sources": _contents(source_files),
        "package": _stamp(_package_files()),
        "handled_fs": ruleset["handledAccessFs"],
        "unix": unix,
        "handled_net": ruleset["handledAccessNet"],
        "scoped": ruleset["scoped"],
        "paths": paths,
        "globs": glob_grants,
        "spans": spans,
        "ports": [(p["allowedAccess"][0], port) for p in doc["netPort"] for port in p["port"]],
        "deny_nodes": deny_nodes,
        "deny_patterns": deny_patterns,
        "deny_unsupported": deny_unsupported,
        # literal paths compared as strings: no `re` on the start-up path unless a glob needs it
        "exec_paths": sorted({alt.replace("\\", "") for p in exec_rules for alt in globs.expand(p) if not globs.has_glob(alt)}),
        "exec": [globs.to_regex(alt).pattern for p in exec_rules for alt in globs.expand(p) if globs.has_glob(alt)],
        "exec_syscall": "execve" in syscalls,
        "requirements": requirements,
        "caps": sorted(caps[c.name]["number"] for c in ir.capabilities if not c.deny),
        "cap_names": [c.name for c in ir.capabilities if not c.deny],
        "bpf": bpf,
        "bpf_self": _seccomp.self_pid_offsets(bpf),
        "syscall_count": len(ir.syscalls),
        "filtered_count": sum(1 for r in ir.syscalls if r.alternatives and not r.outright),
        "unenforced": [
            (type(rc.rule).__name__, rc.describe(), str(rc.rule.span), ", ".join(t for t, c in rc.others.items() if c.level)) for rc in gaps
        ],
        "syscall_names": sorted(syscalls),
        "unenforced_ports": [
            f"ports of {name} sockets (Networking.Protocols): Landlock's port rules see TCP only" for name in ir.unported
        ] + (["connect ports of TCP Fast Open connections (flag fastopen): Landlock's connect rule does not see them"] if "fastopen" in ir.lifted else []),
        "denied_syscalls": {r.name: r.origin for r in ir.denied_syscalls},
        # host names, peer denies, ALPN: only the egress supervisor sees them
        "egress": egress_document(ir) if ir.supervised else None,
    }
    if ir.supervised:
        plan["bpf_egress"] = _seccomp.build(ir.syscalls, supervise=_seccomp.PEER_CALLS, self_pid=_seccomp.SELF_PID_PLACEHOLDER).export_bpf()
        plan["bpf_egress_self"] = _seccomp.self_pid_offsets(plan["bpf_egress"])
        # any allowance, conditional too: an io_uring request is made by the kernel, never seen by the filter
        plan["io_uring"] = bool(set(syscalls) & {"io_uring_setup", "io_uring_enter", "io_uring_register"})
        plan["egress_calls"] = {name: _seccomp.resolve(name, _seccomp.native_arch()) for name in sorted(_seccomp.PEER_CALLS)}
        # the supervisor passes IP control messages that route or forge packets only when the filters would too
        plan["ip_control_lifted"] = "forged-packets" in ir.lifted
        if "signal" not in plan["scoped"]:
            # the supervisor is outside the sandbox: the program must not signal it
            plan["scoped"] = [*plan["scoped"], "signal"]
        requirements.append((6, "keeping the egress supervisor out of the program's reach (Landlock signal scope)"))
    if log_mode:
        from .runlog import CAPABILITY_CALLS

        # The calls that need a capability come to the supervisor even when
        # allowed, so that it can name the ones that would fail with EPERM.
        # What the policy denies in words and what guards refuse stays
        # refused there (``learn.refused_by``).
        plan["bpf_log"] = _seccomp.build(tuple(r for r in ir.syscalls if r.name not in CAPABILITY_CALLS), notify=True, self_pid=_seccomp.SELF_PID_PLACEHOLDER).export_bpf()
        plan["bpf_log_self"] = _seccomp.self_pid_offsets(plan["bpf_log"])
        native = _seccomp.native_arch()
        plan["refusals"] = [
            (r.name, nr, [[(c.arg, c.op.policy, c.value, c.mask) for c in alt] for alt in r.alternatives], r.origin or "Misc.DenySyscalls")
            for r in (*ir.refusals, *ir.denied_syscalls)
            if (nr := _seccomp.resolve(r.name, native)) >= 0
        ]
    return plan


GlobGrant = tuple  # (glob, rights, span, segments or None, whole subtree)


def _grants(ir: "Any") -> "tuple[list[tuple[str, list[str]]], list[GlobGrant], dict[str, str]]":
    """What Landlock is asked to grant, without widening: rules it expresses
    exactly (a literal path, DIR/**) as (path, rights); every other glob as
    (glob, rights, span, segments, whole subtree) for ``grants`` to match
    against what exists when the program starts (a segment is (is a glob,
    literal text or regex); no segments: a literal directory; None: a ``**``
    before the end, which cannot be matched without walking a whole tree);
    and the first rule behind each exact grant."""
    from ..backends.landlock import ELF_INTERPRETERS, FS_RIGHTS, beneath, rights
    from ..ir import Access
    from ..policy import globs

    exact: dict[str, set[str]] = {}
    inexact: list[GlobGrant] = []
    spans: dict[str, str] = {}
    for f in ir.files:
        if f.deny:
            continue
        granted = rights(f.access)
        for alt in globs.expand(f.path):
            parent, is_exact = beneath(alt)
            if is_exact:
                exact.setdefault(parent, set()).update(granted)
                spans.setdefault(parent, str(f.span))
                continue
            subtree = alt.endswith("/**")
            body = alt[:-3] if subtree else alt
            segments: list[tuple[bool, str]] | None = [
                (globs.has_glob(seg), globs.to_regex(seg).pattern if globs.has_glob(seg) else seg.replace("\\", "")) for seg in body.strip("/").split("/")
            ]
            if body.endswith("/") and not globs.has_glob(body):
                segments = []  # a literal directory: Landlock cannot grant it without what lies beneath
            elif "**" in body.replace("\\*", ""):
                segments = None
            inexact.append((alt, granted, str(f.span), segments, subtree))
    if any(Access.MAP_EXEC in f.access for f in ir.files if not f.deny):
        for interp in ELF_INTERPRETERS:  # the kernel opens it for execution
            exact.setdefault(interp, set()).update(("read_file", "execute"))
    order = list(FS_RIGHTS)
    return [(p, sorted(r, key=order.index)) for p, r in sorted(exact.items())], inexact, spans


def _split_denies(coverage: "list[Any]") -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Every deny rule, in the forms ``apply`` can split grants around: whole
    nodes (DIR/**, a literal path) and one-directory patterns (DIR/*.key).
    All of them, not only those inside an allowed directory by name: whether
    a grant contains a deny is decided on canonical paths at run time (an
    alias such as /lib -> usr/lib), and every denied file's hard links are
    checked there. A form that cannot be split is refused only where the
    policy's own paths put it inside an allowed directory."""
    from ..policy import globs

    nodes: list[str] = []
    patterns: list[tuple[str, str]] = []
    unsupported: list[str] = []
    for rc in coverage:
        rule = rc.rule
        if type(rule).__name__ != "FileRule" or not rule.deny:
            continue
        inside = not rc.selected["landlock"].level  # Landlock's own verdict on the policy's paths
        for alt in globs.expand(rule.path):
            literal = alt.replace("\\", "")
            if not globs.has_glob(alt):
                nodes.append(literal.rstrip("/") or "/")
            elif alt.endswith("/**") and not globs.has_glob(alt[:-3]):
                nodes.append(alt[:-3].replace("\\", "") or "/")
            elif "/" not in alt[len(globs.literal_prefix(alt)) :] and "**" not in alt:
                directory, _, name = alt.rpartition("/")
                patterns.append((directory.replace("\\", "") or "/", globs.to_regex(name).pattern))
            elif inside:
                unsupported.append(rule.path)
    return sorted(set(nodes)), sorted(set(patterns)), sorted(set(unsupported))


def cache_dir() -> str | None:
    """corral's cache directory for this run (XDG_CACHE_HOME, else HOME/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else "")
    if not base or not base.startswith("/"):
        return None
    return os.path.join(base, "corral")


def cache_dirs() -> list[str]:
    """Every cache directory a later run of this user may read, all denied
    in every sandbox: this run's, and the ones a run with another
    environment would use (HOME/.cache without XDG_CACHE_HOME; the home
    directory the password database names, which a run without HOME, as a
    root service or ``env -i`` has, cannot see in its environment). Denying
    only this run's let a program plant a plan where the next run, started
    from another shell, looks."""
    from .grants import homes

    found = [cache_dir(), *(os.path.join(h, ".cache", "corral") for h in homes())]
    return list(dict.fromkeys(d for d in found if d is not None))


def _cache_file(policy: str) -> str | None:
    base = cache_dir()
    if base is None:
        return None
    key = os.path.abspath(policy).replace("%", "%25").replace("/", "%2F")
    return os.path.join(base, "plans", f"{key}.plan")


def load_cached(policy: str, *, log_mode: bool = False) -> Plan | None:
    """A cached plan for ``policy`` if it is still valid and safe to trust."""
    path = _cache_file(policy)
    if path is None:
        return None
    try:
        # no link, no FIFO (it would block this open), no device: a regular file only
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None  # someone else could have written it: never trust it
            plan = marshal.load(fh)
        if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION or plan.get("python") != sys.version:
            return None
        if log_mode and "bpf_log" not in plan:
            return None
        if plan.get("given") != [os.getcwd(), policy]:
            return None  # messages cite the path as typed: rebuild for another spelling
        for name, content in plan["sources"]:
            with open(name, "rb") as src:
                if src.read() != content:
                    return None
        for name, ino, ctime, mtime, size in plan["package"]:
            st = os.stat(name)
            if (st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size) != (ino, ctime, mtime, size):
                return None
        return plan
    except (OSError, ValueError, EOFError, TypeError, KeyError):
        return None


def save(policy: str, plan: Plan) -> None:
    """Cache a plan, best effort: a cache that cannot be written is skipped."""
    path = _cache_file(policy)
    if path is None:
        return
    from .._base import CorralError

    try:
        from pathlib import Path

        from ..fsutil import write_atomic

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(target, marshal.dumps(plan), force=True, mode=0o600)
    except (OSError, CorralError):  # C005: something other than a regular file is in the way
        pass


def read_fd(fd: int) -> Plan:
    """A plan handed over on a file descriptor (by ``corral.Sandbox.popen``)."""
    with os.fdopen(fd, "rb") as fh:
        plan = marshal.load(fh)
    if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION:
        from .._base import CorralError

        raise CorralError("the plan on --plan-fd is not a plan of this corral version", code="R004", hint="compute the plan with the same corral that runs it")
    return plan


def get(policy: str, *, use_cache: bool = True, log_mode: bool = False) -> Plan:
    """The plan for a policy file: cached, or built (and then cached)."""
    if use_cache:
        from .kernel import landlock_abi

        use_cache = landlock_abi() > 0  # without Landlock a sandbox could rewrite it
    if use_cache:
        cached = load_cached(policy, log_mode=log_mode)
        if cached is not None:
            return cached
    from ..lower import lower
    from ..policy import load_policy

    loaded = load_policy(policy)
    files = [f for f in loaded.sources if not f.startswith("<")]
    plan = build(lower(loaded), files, log_mode=log_mode)
    # the texts the plan was made from, not the files as they are now
    plan["sources"] = [(os.path.abspath(f), text.encode()) for f, text in loaded.sources.items() if not f.startswith("<")]
    plan["given"] = [os.getcwd(), policy]
    if use_cache:
        save(policy, plan)
    return plan
