"""Where learning must not generalise: the grants a learned policy never
makes on its own, whatever a trace showed.

A learned glob ``DIR/*`` or ``DIR/**`` and a learned directory ``DIR/``
become, under Landlock, a rule on all of ``DIR``'s subtree. So the
question for each candidate is what *that subtree* contains, not what the
glob's text matches. A candidate is refused when the subtree is:

* the whole filesystem, or a top-level directory (``/etc``, ``/run``,
  ``/home``, ``/usr`` ...), other than the shared temporary directories;
* a user's home directory or an ancestor of one;
* an ancestor of the working directory the program was traced in;
* home to a well-known secret (``/etc/shadow``, host keys, the Docker
  socket, another process's ``/proc`` entries ...).

A refused candidate is not dropped: the learner lists the files one by
one instead and says why in a note.
"""

from __future__ import annotations

import os
import pwd
import re
import threading
from functools import lru_cache

#: Shared temporary directories: a glob directly in them is allowed (with a
#: note suggesting a private directory); they hold nothing of the system's.
TEMP_DIRS = frozenset({"/tmp", "/var/tmp", "/dev/shm"})

#: Concrete paths whose directory a learned rule must never grant as a whole
#: (the deny-list the property tests check every generated rule against).
SECRETS = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/README",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssl/private/ssl-cert-snakeoil.key",
    "/etc/security/opasswd",
    "/root/.ssh/authorized_keys",
    "/root/.bash_history",
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/user/0/bus",
    "/var/lib/sss/secrets/.secrets.mkey",
    "/proc/1/environ",
    "/proc/kcore",
    "/proc/sysrq-trigger",
    "/sys/kernel/security/apparmor/policy",
    "/sys/firmware/efi/efivars",
    "/dev/mem",
    "/dev/sda",
    "/boot/vmlinuz",
)


@lru_cache(maxsize=1)
def homes() -> frozenset[str]:
    """Home directories of this machine's people: root, accounts from
    UID_MIN (1000) up except nobody, and $HOME. System accounts' "homes"
    (/usr/sbin, /var/cache/man ...) are not homes in this sense."""
    out = {"/root"}
    try:
        out.update(os.path.normpath(p.pw_dir) for p in pwd.getpwall() if p.pw_dir.startswith("/") and (p.pw_uid == 0 or 1000 <= p.pw_uid < 65534))
    except OSError:  # pragma: no cover - no passwd database
        pass
    home = os.environ.get("HOME", "")
    if home.startswith("/"):
        out.add(os.path.normpath(home))
    out.discard("/")
    return frozenset(out)


def _within(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory.rstrip("/") + "/")


def _real(path: str) -> str:
    """PATH as this host resolves it (symlinks, ``/proc/self/root``,
    ``/proc/self/cwd``, ``..`` after a link), with this process's own
    /proc entries written back as /proc/self and /proc/thread-self."""
    real = os.path.realpath(path)
    own = f"/proc/{os.getpid()}"
    thread = f"{own}/task/{threading.get_native_id()}"
    for prefix, alias in ((thread, "/proc/thread-self"), (own, "/proc/self")):
        if real == prefix or real.startswith(prefix + "/"):
            return alias + real[len(prefix) :]
    return real


#: /proc entries that stand for a process's root or working directory.
_PROC_DIR = re.compile(r"^/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/(root|cwd)$")


def canonical(path: str, cwd: str | None = None) -> str:
    """PATH written without the aliases a program can choose: ``//`` and
    ``/./``, ``..``, ``/proc/<self|thread-self|PID>/root`` (the process's
    root) and, when CWD is known, ``.../cwd``. Walked one component at a
    time as the kernel does (``/proc/self/root/..`` is ``/``); a ``..``
    goes up from where the path so far leads on this host (after a link,
    that is the link's target's parent). Other symbolic links are kept as
    written: ``sensitive`` and ``refuse`` also judge what a path is here.

    What the kernel checks (AppArmor's path, the inode Landlock's rule
    holds) is the canonical path, so a learned literal is granted as that,
    and judged as that: ``/proc/self/root/etc/shadow`` is ``/etc/shadow``."""
    parts: list[str] = []
    verbatim = False  # after /proc/self/cwd when CWD is unknown: this host's cwd is not the program's
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if verbatim:
            parts.append(part)
            continue
        if part == "..":
            # after a symbolic link (/dev/fd is /proc/self/fd), .. is the
            # parent of where the link leads: ask this host, as refuse does
            parts = [p for p in _real("/" + "/".join(parts)).split("/") if p][:-1]
            continue
        parts.append(part)
        if parts[0] == "proc" and 3 <= len(parts) <= 5 and (m := _PROC_DIR.match("/" + "/".join(parts))):
            if m.group(1) == "root":
                parts = []
            elif cwd is not None and cwd.startswith("/"):
                parts = [p for p in canonical(cwd).split("/") if p]
            else:
                verbatim = True
    return "/" + "/".join(parts)


def sensitive(path: str, patterns: tuple[str, ...]) -> str | None:
    """The form of PATH (its text, its canonical form, what it resolves to
    on this host) that one of PATTERNS (globs; a trailing / means the whole
    tree) matches, or None."""
    from ..policy import globs

    for form in dict.fromkeys((path, canonical(path), _real(path))):
        if any(globs.matches(p.rstrip("/") + ("/**" if p.endswith("/") else ""), form) for p in patterns):
            return form
    return None


def refuse(directory: str, cwd: str | None = None, observed: frozenset[str] = frozenset()) -> str | None:
    """Why granting all of DIRECTORY's subtree (what ``DIR/*``, ``DIR/**``
    and ``DIR/`` become under Landlock) is too wide; None if it is not.

    The directory is judged both by its text and by what it is on this
    host: ``corral run`` opens a glob's matches through the kernel, so
    ``/proc/self/root/etc`` or a planted link to ``/etc`` is ``/etc`` (a
    hostile program chooses the paths a trace shows).

    ``observed``: paths the program itself used; a secret it used is the
    program's business (the learner notes it separately), not a reason.
    """
    d = os.path.normpath(directory) if directory else "/"
    why = _refuse(d, cwd, observed)
    if why is None:
        real = _real(d)
        if real != d and (why := _refuse(real, cwd, observed)) is not None:
            why = f"{d} is {real} on this host, and {why}"
    return why


#: Directories that are a descriptor's number: under ``corral run`` they name
#: what corral has open under that number, not what the trace saw (the fd
#: directory itself is the program's own: corral execs it in place).
_DESCRIPTOR = re.compile(r"^(?:/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd|/dev/fd)/\d+(?:/|$)")


def _refuse(d: str, cwd: str | None, observed: frozenset[str]) -> str | None:
    if _DESCRIPTOR.match(d):
        return "a descriptor's number names whatever corral run has open under it, not the directory the trace saw"
    if d == "/":
        return "it would grant the whole filesystem"
    for home in homes():
        if _within(home, d):
            return f"it would grant {'the home directory ' + home if home == d else 'all of ' + d + ', which holds the home directory ' + home}"
    if d.count("/") == 1 and d not in TEMP_DIRS:
        return f"{d} is a system-wide top-level directory"
    if cwd and cwd != d and _within(os.path.normpath(cwd), d):
        return f"{d} is an ancestor of the working directory {cwd}"
    for secret in SECRETS:
        if secret not in observed and _within(secret, d):
            return f"it would also grant {secret}"
    if d.startswith("/proc/") and not d.startswith(("/proc/self/", "/proc/thread-self/")) and d not in ("/proc/self", "/proc/thread-self"):
        return "it would grant /proc entries beyond the process's own"
    return None
