"""The Landlock grants ``corral run`` adds: canonical paths on this host,
split around denies, never through a symlink it did not expect.

Landlock checks the path a program's access resolves to, so a grant and a
deny are compared as the kernel sees them: both sides are resolved on this
host first (``/lib`` is ``/usr/lib`` on a usrmerged system; a deny on
``/usr/lib/os-release`` is void if ``/lib`` is granted by name). Then:

- a grant that lies at or below a denied node is dropped (deny wins);
- a grant above one is split: the directory's entries are granted one by
  one, except the denied ones. An entry that is a symlink is never
  granted (opening it would grant its target; the kernel resolves the link
  against the other grants anyway), and a regular file with more than one
  hard link is not granted either (it may be another name for a denied
  file). Both are said, with the rule's location;
- a rule path that passes through a symlink owned by someone other than
  root or the caller is refused (another user could point it anywhere),
  unless ``--best-effort``, which drops the rule and says so;
- a denied file with other hard links is refused (a name for it may lie in
  an allowed directory, where Landlock cannot deny it), unless
  ``--best-effort``, which says it is not enforced. So is a denied
  directory inside a grant (the split case) holding such a file at any
  depth, and a file a deny pattern (DIR/*.key) matches there: every file
  under it is looked at once (``_linked_files``, within the split's entry
  budget). A denied directory outside every grant is not walked (that would
  cost every start-up a walk of, say, /tmp): a hard link from an allowed
  path into it reads through that name, which the coverage report says;
- corral's plan cache is denied in every plan (every place a later run may
  look for it: this run's XDG_CACHE_HOME, HOME and the password database's
  home), so no sandbox can rewrite what a later run applies;
- what a later, unconfined `corral run` reads and executes (corral's
  package, every directory on the interpreter's import path, the
  interpreter itself, the directory it is started from and the
  ``pyvenv.cfg`` above it, the user's site directories even before they
  exist) is never writable in a sandbox: a write grant over it keeps only
  its read rights there, and says so. A planted module or ``.pth`` file
  would run before the next sandbox is applied;
- a write grant over the policy's own files (Extends included) is refused:
  a rewritten policy would widen the next run. ``--best-effort`` runs with
  them read-only (the directories above them then take no new entries);
- so is a write grant over the record ``--log-to`` writes (``plan["records"]``,
  put there by the runner, never cached): a program that outlives the run
  could rewrite it after corral, and ``corral learn --into`` would merge
  its forged calls and capabilities.

Only os, stat and pwd (built in) are imported (re only when a glob or a deny
pattern must be matched): this is on the start-up path.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

    from .apply import Report

MAX_SPLIT_ENTRIES = 4096
_MAX_LINKS = 40
#: Rights that change nothing on disk: what a grant keeps over corral's code.
_READ_RIGHTS = frozenset({"execute", "read_file", "read_dir"})
_CODE = "corral's own code or the policy's files (a later corral run reads them unconfined), never writable in a sandbox"


def homes() -> list[str]:
    """The user's home directories as a later run may see them: HOME, and
    the one the password database names (a run without HOME, as a root
    service or ``env -i`` has, falls back on it)."""
    import pwd

    found = [os.environ.get("HOME", "")]
    try:
        found.append(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:  # a uid the password database does not name
        pass
    return list(dict.fromkeys(h for h in found if h.startswith("/")))


def corral_code(seen: "_Seen | None" = None) -> list[str]:
    """Where the code a later `corral run` executes lives, canonical: this
    package, the interpreter's import path and the interpreter; the
    directory the interpreter is started from (a venv's ``bin/``, with
    corral's console script) and the ``pyvenv.cfg`` above it, whose
    ``home`` says where the standard library is loaded from; and the user's
    site directories (PYTHONUSERBASE or ~/.local, ``lib/``), which a Python
    outside a venv imports from, and runs the ``.pth`` files of, as soon as
    they exist: missing now (or off in this run, under ``-I`` or a venv),
    they are on no import path yet."""
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    started = os.path.dirname(os.path.abspath(sys.executable))
    places = [here, sys.executable, started, os.path.join(os.path.dirname(started), "pyvenv.cfg"), *(p for p in sys.path if p and os.path.isabs(p))]
    bases = [os.environ.get("PYTHONUSERBASE", ""), *(os.path.join(h, ".local") for h in homes())]
    places += [os.path.join(b, "lib") for b in bases if b.startswith("/")]
    return sorted({resolve(p, seen)[0] for p in places})


#: lstat answers within one ``compute`` (grants share most of their prefixes):
#: path -> (symlink target or None, owner uid), or None if it does not exist.
_Seen = dict


def _lstat(candidate: str, seen: "_Seen | None") -> "tuple[str | None, int] | None":
    if seen is not None and candidate in seen:
        return seen[candidate]  # type: ignore[no-any-return]
    try:
        st = os.lstat(candidate)
        found: "tuple[str | None, int] | None" = (os.readlink(candidate) if stat.S_ISLNK(st.st_mode) else None, st.st_uid)
    except OSError:
        found = None
    if seen is not None:
        seen[candidate] = found
    return found


def resolve(path: str, seen: "_Seen | None" = None) -> tuple[str, bool, list[tuple[str, int]]]:
    """``path`` resolved on this host as the kernel would: (canonical path,
    whether it exists, the symlinks passed through with their owner's uid).
    Components that do not exist are kept as written."""
    links: list[tuple[str, int]] = []
    todo = [c for c in path.split("/") if c][::-1]
    done = ""
    hops = 0
    while todo:
        name = todo.pop()
        if name == ".":
            continue
        if name == "..":
            done = done.rpartition("/")[0]
            continue
        candidate = f"{done}/{name}"
        found = _lstat(candidate, seen)
        if found is None:
            return "/".join([candidate, *todo[::-1]]), False, links
        target, uid = found
        if target is not None:
            hops += 1
            if hops > _MAX_LINKS:
                return candidate, False, links
            links.append((candidate, uid))
            if target.startswith("/"):
                done = ""
            todo += [c for c in target.split("/") if c][::-1]
            continue
        done = candidate
    return done or "/", True, links


def _matches(segments: list[tuple[bool, str]], budget: list[int]) -> list[str]:
    """The existing paths a glob matches, one directory level per segment."""
    import re

    frontier = [""]
    for is_glob, text in segments:
        if not is_glob:
            frontier = [f"{d}/{text}" for d in frontier]
            continue
        rx = re.compile(text)
        found = []
        for d in frontier:
            try:
                entries = list(os.scandir(d or "/"))
            except OSError:
                continue
            budget[0] -= len(entries)
            if budget[0] < 0:
                from .apply import SandboxError

                raise SandboxError(f"matching a glob in {d or '/'} needs more than {MAX_SPLIT_ENTRIES} entries", "allow narrower paths")
            found += [f"{d}/{e.name}" for e in entries if rx.fullmatch(e.name)]
        frontier = sorted(found)
    return frontier


def _literal_dir(glob: str) -> str:
    """The deepest directory of ``glob`` with no glob character in it."""
    cut = min((i for i, c in enumerate(glob) if c in "*?[{"), default=len(glob))
    head = glob[:cut]
    return (head if cut == len(glob) else head.rpartition("/")[0]).rstrip("/").replace("\\", "") or "/"


def _below(path: str, node: str) -> bool:
    return path == node or path.startswith(node.rstrip("/") + "/")


def _linked_files(top: str, budget: list[int]) -> list[tuple[str, int]] | None:
    """Regular files at or under ``top`` with more than one name, and their
    link counts; None when looking would take more than the budget's entries.
    Symlinks are not followed (the kernel resolves them against the grants)."""
    found: list[tuple[str, int]] = []
    todo = [top]
    while todo:
        here = todo.pop()
        try:
            st = os.lstat(here)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            found.append((here, st.st_nlink))
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            with os.scandir(here) as entries:
                names = [e.path for e in entries]
        except OSError:
            continue
        budget[0] -= len(names)
        if budget[0] < 0:
            return None
        todo += names
    return found


def compute(plan: "dict[str, Any]", report: "Report") -> list[tuple[str, list[str]]]:
    """The (canonical path, rights) rules to add; fills ``report.skipped``
    and ``report.not_enforced``; raises SandboxError for what cannot be
    enforced as written unless ``report.best_effort``."""
    from .apply import SandboxError
    from .plan import cache_dirs

    spans: dict[str, str] = plan.get("spans", {})
    euid = os.geteuid()
    seen: _Seen = {}
    refused: list[str] = []  # why the plan cannot run as written
    dropped: list[str] = []  # what --best-effort then does not enforce

    def foreign(path: str, links: list[tuple[str, int]]) -> bool:
        for link, uid in links:
            if uid not in (0, euid):
                where = f" [{spans[path]}]" if path in spans else ""
                through = "is" if link == path else f"resolves through {link}, which is"
                refused.append(f"{path} {through} a symlink owned by uid {uid}{where}")
                dropped.append(f"the rule for {path} (it resolves through a symlink owned by uid {uid}){where}")
                report.skipped.append(f"{path}: resolves through {link}, a symlink owned by uid {uid}, not granted{where}")
                return True
        return False

    nodes: dict[str, str] = {}
    for node in plan["deny_nodes"]:
        canon, exists, links = resolve(node, seen)
        nodes.setdefault(canon, "denied")
        if exists:
            st = os.lstat(canon)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                refused.append(f"{canon} has {st.st_nlink} hard links: another name for it may lie in an allowed directory, where Landlock cannot deny it")
                dropped.append(f"deny {node} for its other {st.st_nlink - 1} hard link(s)")
    for cache in cache_dirs():  # no sandbox may rewrite a plan a later run applies
        nodes[resolve(cache, seen)[0]] = "corral's plan cache, denied in every sandbox"
    code = corral_code(seen)
    sources = [resolve(name, seen)[0] for name, _ in plan.get("sources", ())]
    records = [resolve(name, seen)[0] for name in plan.get("records", ())]
    if report.best_effort:
        code += sources + records  # kept read-only: the directories above them take no new entries
    patterns: "list[tuple[str, re.Pattern[str]]]" = []
    if plan["deny_patterns"]:
        import re

        patterns = [(resolve(d, seen)[0], re.compile(rx)) for d, rx in plan["deny_patterns"]]
    out: list[tuple[str, list[str]]] = []
    budget = [MAX_SPLIT_ENTRIES]
    denied = [n for n, why in nodes.items() if why == "denied"]  # the policy's own, not the cache
    link_budget = [MAX_SPLIT_ENTRIES]  # entries looked at under denied nodes, apart from the split's
    walked = {n for n in denied if not os.path.isdir(n)}  # a denied file's links are counted above

    def links_under(node: str) -> None:
        """Refuse a deny that a file's other name could void: every file at
        or under ``node`` (a denied node inside a grant) has one name only."""
        if node in walked:
            return
        walked.add(node)
        linked = _linked_files(node, link_budget)
        if linked is None:
            refused.append(f"cannot check every file under the denied {node} for other hard links: more than {MAX_SPLIT_ENTRIES} entries")
            dropped.append(f"deny {node} for files under it with other hard links (not checked: more than {MAX_SPLIT_ENTRIES} entries)")
            return
        for name, count in linked:
            refused.append(f"{name} has {count} hard links: another name for it may lie in an allowed directory, where Landlock cannot deny it")
            dropped.append(f"deny {name} for its other {count - 1} hard link(s)")

    def grant(path: str, rights: list[str], span: str) -> None:
        for node, why in nodes.items():
            if _below(path, node):
                report.skipped.append(f"{path}: {why}")
                return
        writes = any(r not in _READ_RIGHTS for r in rights)
        exposed = [f for f in sources if writes and _below(f, path) and f not in code]
        if exposed:
            where = f" [{span}]" if span else ""
            refused.append(f"the policy file {exposed[0]} lies inside {path}, which the policy makes writable{where}: the program could rewrite the policy the next run applies")
            return
        forged = [f for f in records if writes and _below(f, path) and f not in code]
        if forged:
            where = f" [{span}]" if span else ""
            refused.append(
                f"the --log-to record {forged[0]} lies inside {path}, which the policy makes writable{where}:"
                " the program could rewrite it after the run, and `corral learn --into` would merge what it wrote; write the record elsewhere"
            )
            return
        if writes and any(_below(path, c) for c in code):
            report.skipped.append(f"{path}: {_CODE}: granted without its write rights")
            keep = [r for r in rights if r in _READ_RIGHTS]
            if keep:
                grant(path, keep, span)
            return
        below = path.rstrip("/") + "/"
        guarded = [*nodes, *(code if writes else ())]
        if not any(n.startswith(below) for n in guarded) and not any(_below(d, path) for d, _ in patterns):
            out.append((path, rights))
            return
        for node in denied:  # split around: no file under a deny in here may have a name elsewhere
            if node.startswith(below):
                links_under(node)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            report.skipped.append(f"{path}: {exc.strerror}")
            return
        budget[0] -= len(entries)
        if budget[0] < 0:
            raise SandboxError(
                f"splitting {path} around a deny rule needs more than {MAX_SPLIT_ENTRIES} Landlock rules",
                "deny a path nearer the top of the allowed directory, or allow narrower paths",
            )
        where = f" [{span}]" if span else ""
        for entry in entries:
            if any(d == path and rx.fullmatch(entry.name) for d, rx in patterns):
                report.skipped.append(f"{entry.path}: denied")
                links_under(entry.path)
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = resolve(entry.path, seen)[0]
                if not _below(target, path):
                    report.skipped.append(f"{entry.path}: a symlink out of {path} (to {target}), not granted{where}")
                continue  # the kernel resolves it against the other grants
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                report.skipped.append(f"{entry.path}: has {st.st_nlink} hard links (another name may be denied), not granted{where}")
                continue
            grant(entry.path, rights, span)

    def rule(path: str, rights: list[str], span: str, *, whole: bool = True) -> bool:
        canon, exists, links = resolve(path, seen)
        if foreign(path, links):
            return False
        if not exists:
            report.skipped.append(f"{path}: does not exist")
            if "write_file" in rights:
                report.missing_writable.append(path)
            return False
        if not whole and os.path.isdir(canon):
            report.skipped.append(f"{path}: a directory; Landlock would grant everything beneath it, not granted [{span}]")
            return False
        if plan["deny_nodes"] or plan["deny_patterns"]:
            st = os.stat(canon)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:  # a rule on the inode grants every name of it
                report.skipped.append(f"{path}: has {st.st_nlink} hard links (another name may be denied), not granted [{span}]")
                return False
        grant(canon, rights, span)
        return True

    for path, rights in plan["paths"]:
        rule(path, rights, spans.get(path, ""))
    exact = dict(plan["paths"])
    for alt, rights, span, segments, subtree in plan.get("globs", ()):
        parent = alt.split("**")[0] if segments is None else alt
        parent = _literal_dir(parent)
        if report.best_effort and segments != []:  # as asked: wider, and said
            if rule(parent, rights, span):
                report.not_enforced.append(f"{alt}: Landlock grants all of {parent} [{span}]")
            continue
        if segments == []:  # DIR/: the directory itself
            have = exact.get(parent, ())
            listing = [r for r in rights if r == "read_dir" and r not in have]
            if set(rights) <= set(have):
                continue
            if listing and rule(parent, listing, span):
                report.narrowed.append(f"{alt}: only listing is granted (Landlock cannot grant a directory without what lies beneath it; subdirectories can be listed too) [{span}]")
            else:
                report.narrowed.append(f"{alt}: not granted (Landlock cannot grant a directory without what lies beneath it) [{span}]")
            continue
        if segments is None:
            refused.append(f"{alt} has '**' before its end: Landlock would grant all of {parent} [{span}]")
            continue
        found = [m for m in _matches(segments, budget) if rule(m, rights, span, whole=subtree)]
        if found:
            report.narrowed.append(f"{alt}: granted the {len(found)} existing match(es) only; a name created later is not granted [{span}]")
        else:
            report.narrowed.append(f"{alt}: no existing match, nothing granted [{span}]")
    if refused and not report.best_effort:
        raise SandboxError("; ".join(refused), "fix the rule (or the link it goes through), or pass --best-effort to run without it")
    report.not_enforced += dropped
    merged: dict[str, list[str]] = {}  # /lib and /usr/lib are one grant
    for path, rights in out:
        have = merged.setdefault(path, [])
        have += [r for r in rights if r not in have]
    return list(merged.items())
