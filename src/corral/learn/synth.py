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
* ``ioctl`` through the flag whose argument filter covers the requests
  seen; ``setsockopt`` as exactly the socket options seen.
* Paths: files a chosen flag covers (the resolver's, for ``dns``) are left
  out; created files make their directory ``DIR/**`` (their names vary
  between runs, and a name that does not exist yet can only be granted as
  the directory, which Landlock grants with its subtree),
  files created in two or more subdirectories of one directory make it
  ``DIR/**``, four or more files read in one directory, or one named on
  the command line (an input: the next run names another), become ``DIR/*``;
  everything else stays a literal path. No glob is made where
  ``safety.refuse`` says its subtree is too much (``/``, ``/etc``, a home,
  an ancestor of the working directory ...): the files are listed one by
  one and a note says why. A program that creates files also gets the
  calls to remove and rename them, which it needs the next time. Writes in
  shared temporary directories get a note suggesting a private runtime
  directory.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from ..escape import Unrepresentable, comment, printable, toml_string, visible
from ..ir import IR, Access
from ..policy import catalog, globs
from ..policy.model import CmpOp
from . import safety
from .events import Call, Capability, Collected, File, Ioctl, Port, SockOpt, Socket, Syscall
from .suggest import NAMESPACE_CALLS, covers, suggest

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
        """Add VALUE to SECTION.KEY unless it is there already, or the policy
        language would refuse it: every learned value is checked by the item
        kind the loader checks that key with (``schema``), so a log naming an
        unknown capability or port 99999999 yields a note, not a policy that
        fails to load."""
        if any(line.value == value for line in self.keys[(section, key)]):
            return
        try:
            toml_string(value)
        except Unrepresentable:  # a byte the log holds as is (surrogateescape), never U+FFFD in its place
            self.notes.append(f"'{printable(value, 120)}' left out of {section}.{key}: it is not UTF-8, which a policy (TOML) cannot hold (seen: {why})")
            return
        problem = _problem(section, key, value)
        if problem:
            self.notes.append(f"'{printable(value, 80)}' left out of {section}.{key}: {printable(problem)} (seen: {why})")
            return
        self.keys[(section, key)].append(Line(value, why))


def _problem(section: str, key: str, value: str) -> str:
    """Why the policy language refuses VALUE under SECTION.KEY ("" if not)."""
    from ..policy import schema
    from ..policy.items import Problem

    spec = next((k for k in schema.SECTIONS.get(section, ()) if k.key == key), None)
    if spec is None or spec.item is None:
        return f"{section}.{key} is not a key of the policy language"
    found = spec.item.parse(value)
    return found.message if isinstance(found, Problem) else ""

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


def synthesize(c: Collected, base: IR | None = None, cwd: str | None = None, argv: list[str] | None = None) -> Additions:
    """Policy additions for what was collected; ``cwd`` is where the program
    ran (no glob may grant one of its ancestors); ``argv`` the command, whose
    file arguments are the program's inputs and outputs: another run names
    other files in the same directories."""
    out = Additions()
    _canonical_files(c, cwd)
    out.notes += c.notes
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
        if proto is None:
            out.notes.append(f"a '{printable(s.family, 40)}' '{printable(s.type, 40)}' socket has no corral protocol: not granted (seen: {c.why(s)})")
        elif (s.family, s.type) not in base_protocols:
            out.add("Networking", "Protocols", proto, c.why(s))
    base_ports = {(p.direction, p.port) for p in base.ports} if base else set()
    for p in sorted(ports, key=lambda p: (p.direction, p.port)):
        if p.protocol != "tcp" or ("connect" if p.direction == "connect" else "bind", p.port) in base_ports:
            continue
        key = "Connect" if p.direction == "connect" else "Bind"
        out.add("Networking", key, "tcp:*" if p.port == 0 else f"tcp:{p.port}", f"{c.why(p)}" + (" (port 0: any free port)" if p.port == 0 else ""))
    _socket_options(out, c, used, base)
    for cap in sorted((e for e in c.events if isinstance(e, Capability)), key=lambda e: e.name):
        out.add("User", "Capabilities", cap.name, c.why(cap))
    _ioctls(out, c, used, flags, chosen)
    _refused_calls(out, c, chosen, base_calls)

    # -- files ------------------------------------------------------------------
    remaining = _file_flags(files, flags, chosen, base)
    if any(f.mode == "x" for f in files):
        chosen.append("exec")
    named = frozenset(os.path.normpath(os.path.join(cwd or "/", a)) for a in (argv or [])[1:] if a and not a.startswith("-"))
    created = _paths(out, c, remaining, base, cwd, named)
    if created:
        # Whoever creates files in a directory will meet them there the next
        # time: removing and renaming come with creating (as cpath means).
        extra = sorted(_RECREATE - used - base_calls)
        for name in extra:
            out.add("Misc", "Syscalls", name, "files are created here: replacing them the next run needs it (as cpath means)")
        used_extra = set(extra)
    else:
        used_extra = set()

    # -- system calls -------------------------------------------------------------
    for name in chosen:
        out.add(flags[name].category or "Misc", "Flags", name, "chosen from what the program did")
    _cover_syscalls(out, used - base_calls - used_extra, flags, chosen, used_extra)
    out.used_syscalls = len(used)
    return out


def _canonical_files(c: Collected, cwd: str | None) -> None:
    """Restate every file event by its canonical path (``safety.canonical``):
    ``/proc/self/root/etc/shadow`` is granted, globbed and judged as the
    ``/etc/shadow`` the kernel checks, never as an alias that escapes the
    sensitive-path notes and the deny-list."""
    for event in [e for e in c.events if isinstance(e, File)]:
        path = safety.canonical(event.path, cwd)
        if path != event.path:
            c.replace(event, File(path, event.mode))


def _refused_calls(out: Additions, c: Collected, chosen: list[str], base_calls: set[str]) -> None:
    """Calls a policy's filter refused (``corral run --log`` records): the
    narrowest flag that admits each with its arguments (``suggest``); a
    flag that brings capabilities or namespace calls is never added on
    its own, only named in a note."""
    calls = sorted((e for e in c.events if isinstance(e, Call)), key=lambda e: (e.name not in ("clone", "clone3"), e.name, e.args or ()))
    refused = {e.name for e in calls}
    flags = catalog.flags()
    for call in calls:
        if call.name in ("setsockopt", "socket"):
            continue  # the record's sockopt and socket events say what to add
        if any(covers(flags[name], call.name, call.args) for name in chosen):
            continue  # a flag already chosen (threads, for clone) lets it through
        s = suggest(call.name, call.args)
        what = f"{call.name} request {call.args[1]:#x}" if call.name == "ioctl" and call.args else call.name
        if s.flag is not None and not s.warning and call.name not in ("clone", "clone3") and len(_flag_calls(s.flag) - base_calls - refused) > len(_flag_calls(s.flag) & refused):
            # the flag would widen more than it helps: the bare call (as the trace's greedy cover decides)
            out.add("Misc", "Syscalls", call.name, f"refused under the policy ({c.why(call)}); the flag {s.flag.name} would widen more")
        elif s.flag is not None and not s.warning:
            chosen.append(s.flag.name)
        elif s.flag is not None and (call.name in NAMESPACE_CALLS or call.name in ("clone", "clone3", "unshare", "setns")):
            out.notes.append(f"{what} was refused; only the flag {s.flag.name} allows it, and {s.warning}: not added")
        elif s.flag is not None:  # the bare call, not a flag's capabilities (a Capability event adds what is needed)
            out.add("Misc", "Syscalls", call.name, f"refused under the policy ({c.why(call)}); the flag {s.flag.name} would bring more")
        elif call.name == "ioctl":
            out.add("Misc", "Syscalls", "ioctl", f"{what}: no flag filters this request ({c.why(call)})")
            out.notes.append(f"ioctl is allowed with any request because of {what}; TIOCSTI and TIOCLINUX stay denied in every filter")
        else:
            out.add("Misc", "Syscalls", call.name, f"refused under the policy ({c.why(call)})")


#: Removing and renaming what a program created (cpath's remove/rename calls).
_RECREATE = frozenset({"unlink", "unlinkat", "rename", "renameat2"})  # glibc's unlink/remove/rename and *at forms


def _socket_options(out: Additions, c: Collected, used: set[str], base: IR | None) -> None:
    """setsockopt as exactly the (level, option) pairs seen, never the bare
    call: a policy's SocketOptions filter setsockopt's arguments."""
    options = catalog.socket_options()
    base_opts = {o.name for o in base.socket_options} if base else set()
    for o in sorted((e for e in c.events if isinstance(e, SockOpt)), key=lambda e: e.name):
        if o.name in options:
            if o.name not in base_opts:
                out.add("Networking", "SocketOptions", o.name, c.why(o))
        else:
            out.notes.append(f"setsockopt {o.name} has no corral name, so it is not allowed: name it in src/corral/data/socket_options.toml")
    used.discard("setsockopt")  # lowering allows it for exactly the options listed


def _ioctls(out: Additions, c: Collected, used: set[str], flags: dict, chosen: list[str]) -> None:  # type: ignore[type-arg]
    """ioctl through the flags whose argument filter covers the requests
    seen (fd-ioctls, tty); the bare call only for requests none covers."""
    requests = sorted((e for e in c.events if isinstance(e, Ioctl)), key=lambda e: (e.request, e.text))
    if "ioctl" not in used or not requests:
        return
    by_flag = {name: _allowed_values(flags[name], "ioctl", 1) for name in _IOCTL_FLAGS}
    uncovered = []
    for req in requests:
        owner = next((name for name in _IOCTL_FLAGS if req.request in by_flag[name]), None)
        if owner is None:
            uncovered.append(req)
        elif owner not in chosen:
            chosen.append(owner)
    if uncovered:
        names = ", ".join(dict.fromkeys(r.text for r in uncovered))
        out.add("Misc", "Syscalls", "ioctl", f"requests no flag filters for: {names}")
        out.notes.append(f"ioctl is allowed with any request because of {names}; TIOCSTI and TIOCLINUX stay denied in every filter")
        return
    used.discard("ioctl")


#: Flags that allow ioctl for some requests and nothing else.
_IOCTL_FLAGS = ("fd-ioctls", "tty")


def _allowed_values(flag, call: str, arg: int) -> set[int]:  # type: ignore[no-untyped-def]
    """The values of argument ARG that a flag's filter for CALL admits by
    equality (one comparison per alternative)."""
    out: set[int] = set()
    for name, alternatives in flag.args:
        if name != call:
            continue
        for alt in alternatives:
            for cmp in alt:
                if cmp.arg == arg and cmp.op is CmpOp.EQ and len(alt) == 1:
                    out.add(cmp.value)
    return out


def _file_flags(files: list[File], flags: dict, chosen: list[str], base: IR | None) -> list[File]:  # type: ignore[type-arg]
    """Pick path flags that cover traced paths; return the paths left over.
    Files a chosen flag (dns) already covers are left out too: they must not
    count toward generalising their directory."""
    left = list(files)
    for name in chosen:
        patterns = [i.value for key in ("ReadOnly", "Writable", "Libraries") for i in flags[name].list(key)]
        left = [f for f in left if not (f.mode in "rd" and any(globs.matches(p, f.path) for p in patterns))]
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


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _glob(directory: str, suffix: str) -> str | None:
    escaped = _escape(directory)
    return None if escaped is None else escaped.rstrip("/") + suffix


def _paths(out: Additions, c: Collected, files: list[File], base: IR | None, cwd: str | None = None, named: frozenset[str] = frozenset()) -> bool:
    """Filesystem rules for the files seen; True if some were created.

    Nothing is dropped silently: a path no policy can name, and a glob the
    safety rules refuse (``safety.refuse``), each leave a note; a refused
    glob's files are listed one by one instead.
    """
    observed = frozenset(f.path for f in files)
    created_dirs: dict[str, set[str]] = defaultdict(set)
    writes: list[File] = []
    reads: dict[str, list[File]] = defaultdict(list)
    for f in files:
        form = safety.sensitive(f.path, SENSITIVE)
        if form is not None:
            alias = "" if form == f.path else f" (it is {form} on this host)"
            out.notes.append(f"{f.path}{alias} is sensitive ({c.why(f)}): make sure the program really needs it")
        if f.mode == "x":
            path = _escape(f.path)
            if path is None:
                out.notes.append(f"{f.path!r} cannot be named in a policy: not granted ({c.why(f)})")
            elif not _base_allows(base, f.path, Access.EXEC):
                out.add("Filesystem", "Exec", path, c.why(f))
        elif f.mode in "cn":
            created_dirs[os.path.dirname(f.path.rstrip("/")) or "/"].add(f.path)
        elif f.mode == "w":
            writes.append(f)
        else:
            reads[os.path.dirname(f.path)].append(f)
    # Created names vary between runs: their directory is what is writable,
    # and two or more such subdirectories of one directory make it DIR/**;
    # never where safety.refuse says the subtree is too much.
    writable: dict[str, str] = {}
    literal_writes: list[str] = []
    by_parent: dict[str, list[str]] = defaultdict(list)
    for directory in created_dirs:
        by_parent[os.path.dirname(directory)].append(directory)
    for parent, children in sorted(by_parent.items()):
        if len(children) >= 2 and safety.refuse(parent, cwd, observed) is None and (g := _glob(parent, "/**")):
            writable[g] = f"files created in {len(children)} of its subdirectories"
    for directory, paths in sorted(created_dirs.items()):
        if any(globs.matches(w, directory + "/x") for w in writable):
            continue
        why = safety.refuse(directory, cwd, observed)
        g = _glob(directory, "/**") if why is None else None
        if g is not None:  # DIR/**: what Landlock can grant for names that do not exist yet
            writable[g] = f"{len(paths)} file(s) created or removed here"
            continue
        literal_writes += sorted(paths)
        out.notes.append(
            f"{len(paths)} file(s) created in {directory} are listed one by one, not as {directory.rstrip('/')}/**"
            + (f": {why}" if why else ": the directory cannot be named in a policy")
            + ". A listed file that does not exist yet cannot be created under `corral run`: give the program a directory of its own"
        )
    for f in writes:
        if not any(globs.matches(p, f.path) for p in writable):
            literal_writes.append(f.path)
    for path in dict.fromkeys(literal_writes):
        escaped = _escape(path)
        if escaped is None:
            out.notes.append(f"{path!r} cannot be named in a policy: not granted")
        elif not _base_allows(base, path, Access.WRITE):
            seen = next((x for x in files if x.path == path and x.mode in "wcn"), None)
            writable.setdefault(escaped, c.why(seen) if seen else "written")
    for glob, why in sorted(writable.items()):
        if _base_allows(base, glob.replace("/**", "/x").replace("/*", "/x"), Access.WRITE):
            continue
        out.add("Filesystem", "Writable", glob, why)
        if any((glob + "/").startswith(t + "/") for t in safety.TEMP_DIRS):
            out.notes.append(
                f"{glob} is in a shared, world-writable directory: a private runtime directory (Writable = [\"/run/NAME/**\"], "
                "made by systemd's RuntimeDirectory=) would not let other programs plant or read files there"
            )
    # W^X: a program that ran what it may write (a build, an installer, a
    # script it generates) needs that said in words, or check refuses the
    # learned policy (E022). Said in the policy and in a note, never dropped.
    for line in list(out.keys[("Filesystem", "Exec")]):
        wrote = [w.value for w in out.keys[("Filesystem", "Writable")] if globs.intersects(w.value, line.value)]
        if wrote:
            out.add("Filesystem", "AllowWriteExec", line.value, f"executed, and writable through {', '.join(wrote)}")
            out.notes.append(f"{line.value} is both writable and executable (W^X): the traced program may run what it writes; AllowWriteExec says so, narrow Writable if it should not")
    # A directory named on the command line is an input tree (rsync src/,
    # find DIR): all of it is read, and the next run finds other files there.
    trees: list[str] = []
    for f in sorted(files, key=lambda f: f.path):
        if f.mode in "rd" and f.path in named and os.path.isdir(f.path) and not any(_within(f.path, t) for t in trees):
            why = safety.refuse(f.path, cwd, observed)
            g = _glob(f.path, "/**") if why is None else None
            if g is not None:
                out.add("Filesystem", "ReadOnly", g, f"{os.path.basename(f.path)} is named on the command line: the tree the program reads")
                trees.append(f.path)
            elif why:
                out.notes.append(f"the directory {f.path} named on the command line is not granted as a whole: {why}")
    # Reads: four or more files in one directory make DIR/* where that is safe.
    for directory, fs in sorted(reads.items()):
        fs = [f for f in fs if not any(_within(f.path, t) for t in trees)]
        distinct = sorted({f.path for f in fs if not any(globs.matches(p, f.path) for p in writable)})
        distinct = [d for d in distinct if not _base_allows(base, d, Access.READ)]
        inputs = [d for d in distinct if d in named]
        if len(distinct) >= 4 or inputs:
            why = safety.refuse(directory, cwd, observed)
            g = _glob(directory, "/*") if why is None else None
            if g is not None:
                out.add("Filesystem", "ReadOnly", g, f"{len(distinct)} files read here" if not inputs else f"{os.path.basename(inputs[0])} is named on the command line: another run names another file here")
                continue
            if why:
                out.notes.append(f"{len(distinct)} files read in {directory} are listed one by one, not as {directory.rstrip('/')}/*: {why}")
        for d in distinct:
            f = next(x for x in fs if x.path == d)
            is_dir = f.mode == "d" or os.path.isdir(d)
            if is_dir:
                why = safety.refuse(d, cwd, observed)
                if why:  # Landlock grants a directory's whole subtree
                    out.notes.append(f"reading the directory {d} is not granted: {why} ({c.why(f)})")
                    continue
            # AppArmor names a directory with its trailing / already: never add a second one
            escaped = _escape(d.rstrip("/") + "/" if is_dir and d != "/" else d)
            if escaped:
                out.add("Filesystem", "ReadOnly", escaped, c.why(f))
            else:
                out.notes.append(f"{d!r} cannot be named in a policy: not granted ({c.why(f)})")
    return bool(created_dirs)


def _cover_syscalls(out: Additions, used: set[str], flags: dict, chosen: list[str], preallowed: set[str] | None = None) -> None:  # type: ignore[type-arg]
    """Flags for the calls used, greedily, within the tightness bound;
    ``preallowed``: calls already added beyond those used (they count against it)."""
    if used & {"clone", "clone3"} and not any(covers(flags[n], "clone", None) for n in chosen):
        # A bare clone/clone3 would let the program make namespaces:
        # plain-clone filters clone's flags (and answers clone3 ENOSYS: glibc
        # falls back), and brings nothing else.
        chosen.append("plain-clone")
        out.add("Runtime", "Flags", "plain-clone", "clone without namespace flags (a bare clone would allow them)")
    allowed: set[str] = set(preallowed or ())
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
            if gain <= extra or len(allowed | calls | used) > budget:
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
        out.add("Misc", "Syscalls", name, UNCOVERED)
    out.allowed_syscalls = len(allowed | used)


def _flag_calls(flag) -> set[str]:  # type: ignore[no-untyped-def]
    return set(flag.syscalls) | {n for n, _ in flag.args} | {n for n, _ in flag.errno}


#: The evidence of a used call no flag covers closely: such calls are listed
#: grouped by the catalogue flag they belong to, one comment per group.
UNCOVERED = "used; no flag covers it closely"


def _grouped(values: list[Line]) -> list[str]:
    """Used calls, grouped under the narrowest catalogue flag that holds
    each (its family), with one comment per group saying how much more the
    whole flag would allow; the calls no flag holds come last."""
    flags = catalog.flags()
    groups: dict[str, list[str]] = defaultdict(list)
    for v in values:
        s = suggest(v.value)
        groups[s.flag.name if s.flag is not None and not s.warning else ""].append(v.value)
    out: list[str] = []
    for family in sorted(groups, key=lambda f: (f == "", f)):
        calls = sorted(groups[family])
        if family:
            more = len(_flag_calls(flags[family]) - set(calls))
            out.append(f"  # {len(calls)} of flag {family}'s calls ({flags[family].description}); the whole flag would allow {more} more")
        else:
            out.append("  # used; no catalogue flag holds them")
        for i in range(0, len(calls), 6):
            out.append("  " + " ".join(f"{toml_string(c)}," for c in calls[i : i + 6]))
    return out


SECTION_ORDER = ("Networking", "Filesystem", "Runtime", "User", "Misc")
KEY_ORDER = ("Flags", "Protocols", "Connect", "Bind", "SocketOptions", "ReadOnly", "Writable", "Exec", "AllowWriteExec", "Libraries", "Capabilities", "Syscalls")


def render(additions: Additions, *, name: str, description: str, header: list[str], extends: list[str] | None = None, imply_flags: bool | None = None) -> str:
    """A complete policy file for the additions, with evidence comments."""
    lines = [comment(h) for h in header]
    lines += [f"Name = {toml_string(name)}", f"Description = {toml_string(visible(description))}"]
    if extends:
        lines.append(f"Extends = [{', '.join(toml_string(e) for e in extends)}]")
    notes = list(additions.notes)
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
            if (section, key) == ("Misc", "Syscalls"):
                lines += _grouped([v for v in values if v.why == UNCOVERED])
                values = [v for v in values if v.why != UNCOVERED]
            for v in values:
                try:
                    lines.append(f"  {toml_string(v.value)},  {comment(v.why)}")
                except Unrepresentable:
                    notes.append(f"{visible(v.value)} left out of {section}.{key}: its name is not UTF-8, which a policy (TOML) cannot hold")
            lines.append("]")
    if notes:
        lines.append("")
        lines += [comment(f"NOTE: {n}") for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"
