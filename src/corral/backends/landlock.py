"""Landlock backend: a ruleset in landlockconfig's JSON format.

The artifact conforms to landlock-lsm/landlockconfig's JSON schema (its
``schema/landlockconfig.json``): ``abi`` is the integer ABI the rights were
written for, no list is empty (an empty one is left out), a path's ``$`` is
written ``$$`` (landlockconfig expands ``${name}`` variables), and a rule on
a file carries only the rights the kernel accepts on a file (directory
rights there make ``landlock_add_rule`` fail with EINVAL). So any
landlockconfig consumer can apply it. ``to_document`` keeps the plain form
``corral run``'s plan is built from.

Landlock grants access beneath a directory or to one file, and nothing
else: everything a ruleset handles and no rule grants is denied. So an
allow glob becomes a rule on its longest literal directory (exact for
``DIR/**`` and literal paths, wider otherwise), a deny rule is exact only
where no allowed directory contains it, and TCP ports (ABI 4) are exact.

The document lists every right corral handles; ``corral run`` (later)
applies it with what the running kernel's ABI supports.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .. import guards
from ..ir import ANY_PORT, IR, Access, FileRule, Rule
from ..policy import globs
from ..landlock_rights import FILE_RIGHTS, FS_BITS, NET_BITS, SCOPE_BITS
from . import Coverage, Level, Output

#: Rights by the Landlock ABI version that introduced them (from the one table).
FS_RIGHTS = {name: abi for name, (_, abi) in FS_BITS.items()}
NET_RIGHTS = {name: abi for name, (_, abi) in NET_BITS.items()}
SCOPES = {name: abi for name, (_, abi) in SCOPE_BITS.items()}

#: What Landlock does for a policy that allows unix sockets; ``corral run``
#: says the same before exec.
UNIX_NOTE = (
    "Landlock does not filter socket families; from ABI 9 corral run lets the program connect only to pathname unix sockets"
    " under a Writable path (or created inside the sandbox); below ABI 9, and in landlockconfig's JSON, which has no such right,"
    " every pathname socket the program can name connects"
)
#: The ELF interpreters the kernel opens for execution when it starts a
#: dynamic program: the one file a library grant must make executable.
ELF_INTERPRETERS = (
    "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1",
)  # fmt: skip
#: Why no allow rule is exact in Landlock: what it does not mediate.
UNMEDIATED = "Landlock does not mediate mmap or metadata: a file it grants can be mapped executable, and its mode, owner and times changed where file permissions allow"

#: Rights landlockconfig's schema does not know (newer than its format).
_NOT_IN_LANDLOCKCONFIG = frozenset({"resolve_unix"})

_ACCESS_RIGHTS = {
    Access.READ: ("read_file", "read_dir"),
    # connecting to a pathname unix socket writes to it (AppArmor: w), ABI 9
    Access.WRITE: ("write_file", "remove_dir", "remove_file", "make_dir", "make_reg", "make_sym", "make_sock", "make_fifo", "truncate", "refer", "resolve_unix"),
    # mapping needs read_file only (Landlock does not mediate mmap); execute
    # here would let the program run every program in a library directory
    Access.MAP_EXEC: ("read_file",),
    Access.EXEC: ("execute",),
    Access.LOCK: (),
    Access.LINK: ("refer", "make_reg"),
}


def rights(access: Access) -> list[str]:
    out: set[str] = set()
    for flag, names in _ACCESS_RIGHTS.items():
        if flag in access:
            out.update(names)
    return sorted(out, key=list(FS_RIGHTS).index)


def beneath(path: str) -> tuple[str, bool]:
    """The directory (or file) a Landlock rule for one expanded glob names,
    and whether that rule is exactly as narrow as the glob."""
    if not globs.has_glob(path):
        literal = path.replace("\\", "")
        return (literal.rstrip("/") or "/", not literal.endswith("/") or literal == "/")
    prefix = globs.literal_prefix(path)
    parent = prefix[: prefix.rfind("/") + 1].rstrip("/") or "/"
    exact = path.endswith("/**") and not globs.has_glob(path[:-3]) and prefix == path[:-2]
    return parent, exact


def _file_rules(ir: IR) -> tuple[dict[str, set[str]], list[Coverage]]:
    grants: dict[str, set[str]] = {}
    cov: list[Coverage] = []
    allowed: list[str] = []
    for rule in ir.files:
        if rule.deny:
            continue
        exact = True
        for alt in globs.expand(rule.path):
            parent, alt_exact = beneath(alt)
            exact = exact and alt_exact
            grants.setdefault(parent, set()).update(rights(rule.access))
            allowed.append(parent)
        literal_dir = not globs.has_glob(rule.path) and rule.path.endswith("/") and rule.path != "/"
        note = "" if exact else "Landlock grants the whole directory the glob starts in"
        if literal_dir:
            note = "a literal directory: Landlock grants everything beneath it (AppArmor only the directory); corral run grants only listing it"
        if rule.transition:
            exact = False
            note = (note + "; " if note else "") + f"the program runs under this policy's Landlock rules, not under profile {rule.transition}"
        if Access.LOCK in rule.access or Access.MAP_EXEC in rule.access:
            note = (note + "; " if note else "") + "file locks and executable mappings are not Landlock rights"
        if Access.MAP_EXEC in rule.access:
            note += "; only the ELF interpreter is made executable, not the libraries"
        else:
            exact = False
            note = (note + "; " if note else "") + UNMEDIATED
        cov.append(Coverage(rule, Level.EXACT if exact else Level.APPROX, note))
    if any(Access.MAP_EXEC in r.access for r in ir.files if not r.deny):
        for interp in ELF_INTERPRETERS:  # the kernel opens it for execution
            grants.setdefault(interp, set()).update(("read_file", "execute"))
    names = {r.name for r in ir.syscalls}
    watches, reads = sorted(names & WATCH_CALLS), sorted(names & METADATA_READS)
    for rule in ir.files:
        if rule.deny:
            cov.append(_deny_coverage(rule, allowed, watches, reads))
    return grants, cov


#: Calls that watch a path for changes, which Landlock does not mediate.
WATCH_CALLS = frozenset({"inotify_add_watch", "fanotify_mark"})
#: Calls that read what a path's inode says without opening it, which
#: Landlock does not mediate either: size, times, owner, extended attribute
#: values, a symlink's target.
METADATA_READS = frozenset({"stat", "lstat", "newfstatat", "statx", "getxattr", "lgetxattr", "listxattr", "llistxattr", "readlink", "readlinkat"})


def _deny_coverage(rule: FileRule, allowed: list[str], watches: list[str], reads: list[str]) -> Coverage:
    for alt in globs.expand(rule.path):
        prefix = globs.literal_prefix(alt)
        for parent in allowed:
            if prefix.startswith(parent.rstrip("/") + "/") or prefix == parent:
                return Coverage(rule, Level.NONE, f"Landlock cannot deny inside the allowed {parent}")
    note = ("nothing allowed contains it, so Landlock denies opening, listing, executing and changing it;"
            " not chmod, chown, utimensat or setxattr on it (metadata), which file permissions alone decide;"
            " and a file under it with another name (a hard link) in an allowed path reads through that name (Landlock checks paths;"
            " corral run refuses such files only under a deny inside an allowed directory)")  # fmt: skip
    if reads:
        note += (f"; its metadata stays readable ({', '.join(reads)}, which the policy allows: Landlock does not mediate them),"
                 " so its size, times, owner, extended attribute values and a symlink's target reach the program")  # fmt: skip
    if watches:
        note += (f"; nor watching it ({' and '.join(watches)}, which the policy allows: Landlock does not mediate inotify or fanotify),"
                 " so the names of entries made, opened or changed there, and when, reach the program")  # fmt: skip
    return Coverage(rule, Level.APPROX, note)


def to_document(ir: IR) -> tuple[dict[str, Any], list[Coverage]]:
    grants, cov = _file_rules(ir)
    ports: dict[str, set[int]] = {"connect_tcp": set(), "bind_tcp": set()}
    for p in ir.ports:
        if p.protocol == "tcp":
            ports[f"{p.direction}_tcp"].add(p.port)
    for h in ir.hosts:  # a name's port is the kernel's floor under the supervisor
        if h.protocol == "tcp":
            ports["connect_tcp"].add(h.port)
    handled_net = [right for right, values in ports.items() if ANY_PORT not in values]
    # Scopes stay on unless the policy names the flag that lifts them:
    # allowing kill or unix sockets means inside the sandbox, not outside.
    scoped = sorted(guards.scopes(ir.lifted))
    doc: dict[str, Any] = {
        "ruleset": [{"handledAccessFs": list(FS_RIGHTS), "handledAccessNet": sorted(handled_net), "scoped": scoped}],
        "pathBeneath": [
            {"allowedAccess": sorted(r, key=list(FS_RIGHTS).index), "parent": [p]} for p, r in sorted(grants.items())
        ],
        "netPort": [
            {"allowedAccess": [right], "port": sorted(values)}
            for right, values in sorted(ports.items())
            if values and right in handled_net
        ],
    }
    bypass = [*ir.unported, *(["TCP Fast Open"] if "fastopen" in ir.lifted else [])]
    for p in ir.ports:
        if p.protocol != "tcp":
            cov.append(Coverage(p, Level.NONE, "Landlock restricts TCP ports only"))
        elif bypass:
            cov.append(Coverage(p, Level.APPROX, f"Landlock's port rules do not see {' or '.join(bypass)} connections, which the policy allows"))
        elif p.address:
            cov.append(Coverage(p, Level.APPROX, "Landlock allows the port for every address"))
        else:
            cov.append(Coverage(p, Level.APPROX if p.direction == "bind" else Level.EXACT,
                                "Landlock ABI 4 or later" + ("; listen() on a socket never bound picks an ephemeral port, which Landlock does not check" if p.direction == "bind" else "")))
    cov += [Coverage(h, Level.NONE, f"Landlock cannot see names: it allows port {h.port or '*'} to every address (the floor under corral run's supervisor)") for h in ir.hosts]
    peers: list[Rule] = [*ir.peer_denies, *ir.alpn]
    cov += [Coverage(r, Level.NONE, "Landlock sees ports, not peers or TLS") for r in peers]
    cov += [Coverage(a, Level.NONE, "Landlock does not log") for a in ir.audits]
    cov += [Coverage(s, Level.NONE, UNIX_NOTE if s.family == "unix" else "Landlock does not filter socket families") for s in ir.sockets]
    cov += [Coverage(o, Level.NONE, "Landlock cannot see socket options") for o in ir.socket_options]
    cov += [Coverage(s, Level.NONE, "Landlock does not filter system calls") for s in ir.syscalls]
    cov += [Coverage(c, Level.NONE, "Landlock does not manage capabilities") for c in ir.capabilities]
    return doc, cov


def is_directory(path: str) -> bool | None:
    """Whether a rule's path is a directory on this host (None: missing).
    The rule is applied to what the path names, so a symlink is followed."""
    try:
        return os.path.isdir(path) if os.path.lexists(path) else None
    except OSError:
        return None


def rights_for(path: str, allowed: list[str]) -> list[str]:
    """The rights of ``allowed`` the kernel accepts on ``path``: all of them
    on a directory, the file rights on anything else. A path missing on this
    host gets the file rights too: narrower if it turns out to be a
    directory elsewhere, never an EINVAL."""
    if is_directory(path):
        return list(allowed)
    return [r for r in allowed if r in FILE_RIGHTS]


def _template(path: str) -> str:
    """A path as a landlockconfig template string: ``$`` doubled, so no
    ``${name}`` in a path is read as a variable."""
    return path.replace("$", "$$")


def landlockconfig(doc: dict[str, Any]) -> dict[str, Any]:
    """``to_document``'s form as landlockconfig's JSON: integer ``abi``, no
    empty list, per-inode-type rights, rules with equal rights merged."""
    ruleset = {k: v for k, v in doc["ruleset"][0].items() if v}
    if "handledAccessFs" in ruleset:
        ruleset["handledAccessFs"] = [r for r in ruleset["handledAccessFs"] if r not in _NOT_IN_LANDLOCKCONFIG]
    by_rights: dict[tuple[str, ...], list[str]] = {}
    for grant in doc["pathBeneath"]:
        for parent in grant["parent"]:
            allowed = [r for r in rights_for(parent, grant["allowedAccess"]) if r not in _NOT_IN_LANDLOCKCONFIG]
            if allowed:
                by_rights.setdefault(tuple(allowed), []).append(_template(parent))
    used = [FS_RIGHTS[r] for r in ruleset.get("handledAccessFs", [])]
    used += [NET_RIGHTS[r] for r in ruleset.get("handledAccessNet", [])]
    used += [SCOPES[s] for s in ruleset.get("scoped", [])]
    out: dict[str, Any] = {"abi": max(used, default=1), "ruleset": [ruleset]}
    if by_rights:
        out["pathBeneath"] = [{"allowedAccess": list(r), "parent": sorted(p)} for r, p in sorted(by_rights.items(), key=lambda kv: sorted(kv[1]))]
    if doc["netPort"]:
        out["netPort"] = doc["netPort"]
    return out


def emit(ir: IR) -> Output:
    doc, cov = to_document(ir)
    return Output((json.dumps(landlockconfig(doc), indent=2) + "\n").encode(), tuple(cov))


__all__ = ["FS_RIGHTS", "NET_RIGHTS", "SCOPES", "beneath", "emit", "is_directory", "landlockconfig", "rights", "rights_for", "to_document"]
