"""Read strace output: ``-f`` (pid-prefixed), ``-o FILE`` and ``-ff``
(one file per pid), with or without ``-y``/``-yy`` fd decoding.

Understood: every syscall's name; paths of the calls that open, create,
remove or execute (with ``-yy`` the resolved path strace prints after the
returned fd is preferred: it is what Landlock and AppArmor see); socket
families and types; setsockopt (level, option); connect/bind ports; ioctl
requests; the working directory of each process; and the calls that only
succeed with a capability (an id change to another id, a chown to another
owner, a bind below 1024).
Calls split over ``<unfinished ...>`` / ``<... resumed>`` are joined.

Two things a trace says that a naive reading gets wrong: an ``O_PATH`` open
reads nothing (neither Landlock nor AppArmor checks it), and an
``O_CREAT`` open without ``O_EXCL`` may or may not have created the file;
the reader decides from what the trace showed of the path before (a failed
lookup: created; a successful one: existing), and leaves mode ``n``
("opened with O_CREAT, existence unknown") for the caller to settle.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from ..policy import catalog
from . import safety
from .events import Capability, Collected, Event, File, Ioctl, Port, SockOpt, Socket, Syscall

_LINE = re.compile(
    r"^(?:\[pid\s+)?(?P<pid>\d+)?\]?\s*(?:\d+:\d+:\d+(?:\.\d+)?\s+|\d+\.\d+\s+)?"
    r"(?:(?P<name>[a-z_][a-z0-9_]*)\((?P<args>.*)|<\.\.\. (?P<rname>[a-z_][a-z0-9_]*) resumed>(?P<rargs>.*))$"
)
_RESULT = re.compile(r"\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-f]+|\?)(?P<rest>\S*)(?:\s+(?P<err>E[A-Z0-9]+))?[^=]*$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_DIRFD = re.compile(r"^(?:AT_FDCWD|\d+)<(?P<dir>[^>]*)>")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_FAMILY = {"AF_INET": "inet", "AF_INET6": "inet6", "AF_UNIX": "unix", "AF_LOCAL": "unix", "AF_NETLINK": "netlink", "AF_PACKET": "packet"}
_TYPE = {"SOCK_STREAM": "stream", "SOCK_DGRAM": "dgram", "SOCK_RAW": "raw", "SOCK_SEQPACKET": "seqpacket"}
_LEVEL = {"SOL_SOCKET": "so", "SOL_TCP": "tcp", "IPPROTO_TCP": "tcp", "SOL_IP": "ip", "IPPROTO_IP": "ip", "SOL_IPV6": "ipv6", "IPPROTO_IPV6": "ipv6", "SOL_UDP": "udp", "IPPROTO_UDP": "udp"}
_OPEN_WRITE = ("O_WRONLY", "O_RDWR", "O_TRUNC", "O_APPEND")
#: Calls whose first path argument is created or removed in its directory.
_CREATE_CALLS = {"mkdir": 0, "mkdirat": 1, "unlink": 0, "unlinkat": 1, "rmdir": 0, "creat": 0, "mknod": 0, "mknodat": 1, "symlink": 1, "symlinkat": 2, "link": 1, "linkat": 3}
_RENAME_CALLS = {"rename": (0, 1), "renameat": (1, 3), "renameat2": (1, 3)}
_TRUNCATE_CALLS = {"truncate": 0}
#: Calls that look a path up without opening it: their failures and
#: successes tell whether a later O_CREAT open created the file.
_LOOKUP_CALLS = {"stat": 0, "lstat": 0, "newfstatat": 1, "statx": 1, "access": 0, "faccessat": 1, "faccessat2": 1, "readlink": 0, "readlinkat": 1}
_PROC_PID = re.compile(r"^/proc/(\d+)(/task/(\d+))?(?=/|$)")
_PROC_TASK = re.compile(r"^/proc/(?:self|thread-self)/task/(\d+)(?=/|$)")
_ID_CALLS: dict[str, tuple[str, tuple[int, ...]]] = {"setuid": ("setuid", (0,)), "setreuid": ("setuid", (0, 1)), "setresuid": ("setuid", (0, 1, 2)), "setfsuid": ("setuid", (0,)),
             "setgid": ("setgid", (0,)), "setregid": ("setgid", (0, 1)), "setresgid": ("setgid", (0, 1, 2)), "setfsgid": ("setgid", (0,))}  # fmt: skip
_CHOWN_CALLS = {"chown": 1, "lchown": 1, "fchown": 1, "fchownat": 2}
_CLONE_CALLS = ("clone", "clone3", "fork", "vfork")
_EXITED = re.compile(r"^(?:\[pid\s+)?(\d+)?\]?\s*(?:\S+\s+)?\+\+\+ (?:exited|killed)")
#: Lines remembered (``StraceReader.memo``); beyond, the memory starts over.
MEMO_SIZE = 4096


def _unescape(s: str) -> str:
    try:
        # strace prints a non-UTF-8 byte as \\ooo: kept as that byte (surrogateescape, as os.fsdecode does), never U+FFFD
        return s.encode("utf-8", "surrogateescape").decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return s


def _split_args(args: str) -> list[str]:
    """Top-level comma-separated arguments (strings, braces and brackets kept)."""
    out, depth, cur, in_str, esc = [], 0, [], False, False
    for c in args:
        if in_str:
            cur.append(c)
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "{[(<":
            depth += 1
        elif c in "}])>":
            depth -= 1
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if cur:
        out.append("".join(cur).strip())
    return out


def _path(arg: str, dirfd: str | None, cwd: str) -> str | None:
    m = _STRING.search(arg)
    if m is None:
        return None
    path = _unescape(m.group(1))
    if not path.startswith("/"):
        base = dirfd or cwd
        path = os.path.normpath(os.path.join(base, path))
    return path


def _dirfd(arg: str) -> str | None:
    """The directory a -y decoded dirfd argument names ('AT_FDCWD</tmp>')."""
    m = _DIRFD.match(arg)
    return m.group("dir") if m else None


def _fdpath(rest: str) -> str | None:
    """The path in a -y/-yy decoded fd ('</etc/hosts>', '</dev/null<char 1:3>>')."""
    if not rest.startswith("</"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "<":
            depth += 1
            if depth == 2:
                return rest[2:i]
        elif ch == ">":
            depth -= 1
            if depth == 0:
                return rest[2:i]
    return None


class StraceReader:
    """Feeds strace lines into a ``Collected``; keeps split calls and the
    working directory per pid.

    ``uid``/``gid``: the ids the traced program started with, so that a
    change to another id is recognised as needing a capability.
    """

    def __init__(self, collected: Collected, cwd: str = "/", uid: int | None = None, gid: int | None = None) -> None:
        self.c = collected
        self.cwd0 = cwd
        self.cwds: dict[str, str] = {}
        self.uid, self.gid = uid, gid
        self.pending: dict[str, tuple[str, str]] = {}
        #: Paths a lookup found missing / present, until an open settles them.
        self.absent: set[str] = set()
        self.present: set[str] = set()
        #: The processes and threads of the trace, and who started whom.
        self.pids: set[str] = set()
        self.parents: dict[str, str] = {}
        #: A thread's process (CLONE_THREAD): its /proc/self.
        self.tgids: dict[str, str] = {}
        #: Lines read before and the events they made, valid while
        #: ``version`` (bumped by every change to the state above that a
        #: line's reading depends on) is unchanged: a trace repeats lines
        #: (the same read, mmap, open), and parsing one costs ~15 us.
        self.memo: dict[str, tuple[int, tuple[tuple[Event, str], ...]]] = {}
        self.version = 0
        self._made: list[tuple[Event, str]] | None = None
        #: Repeats of remembered lines not yet added (``flush``), by id of what they made.
        self.hits: dict[int, list[Any]] = {}

    @property
    def cwd(self) -> str:
        """The first process's working directory (kept for callers)."""
        return self.cwds.get("", self.cwd0)

    def feed(self, line: str, pid_hint: str = "") -> bool:
        """Read one line; False if it is not strace output. What the reader
        keeps grows with processes and distinct paths, never with lines."""
        line = line.rstrip("\n")
        key = f"{pid_hint}\0{line}"
        hit = self.memo.get(key)
        if hit is not None and hit[0] == self.version:
            made = hit[1]  # counted now, added by flush(): adding is the costly part, and order does not matter
            seen = self.hits.get(id(made))
            if seen is None:
                self.hits[id(made)] = [made, 1]
            else:
                seen[1] += 1
            return True
        if line.startswith(("+++", "---")) or " +++ " in line or " --- " in line:
            self._exited(line, pid_hint)
            return True
        m = _LINE.match(line)
        if m is None:
            return False
        pid = m.group("pid") or pid_hint
        if pid and pid not in self.pids:
            self.pids.add(pid)
            self.version += 1
        if m.group("rname"):
            name, head = self.pending.pop(pid, (m.group("rname"), ""))
            self._call(name, head + m.group("rargs"), pid)  # depends on the line before: not remembered
            return True
        name, body = m.group("name"), m.group("args")
        if body.endswith("<unfinished ...>"):
            self.pending[pid] = (name, body[: -len("<unfinished ...>")])
            return True
        version, self._made = self.version, []
        try:
            self._call(name, body, pid)
            made = tuple(self._made)
        finally:
            self._made = None
        if self.version == version:
            if len(self.memo) >= MEMO_SIZE:
                self.flush()
                self.memo.clear()
            self.memo[key] = (version, made)
        return True

    def flush(self) -> None:
        """Add the events of the repeated lines counted since the last flush
        (call before reading the ``Collected``)."""
        for made, n in self.hits.values():
            for event, by in made:
                self.c.add(event, by, n)
        self.hits.clear()

    def _exited(self, line: str, pid_hint: str) -> None:
        """``PID +++ exited with N +++``: the process's split call and working
        directory go (a later process may get its pid)."""
        m = _EXITED.match(line)
        pid = (m.group(1) or pid_hint) if m else ""
        if pid and pid in self.cwds or pid in self.pending:
            self.cwds.pop(pid, None)
            self.pending.pop(pid, None)
            self.version += 1

    def _add(self, event: Event, by: str) -> None:
        self.c.add(event, by)
        if self._made is not None:
            self._made.append((event, by))

    def _cwd(self, pid: str) -> str:
        if pid not in self.cwds:
            # A child's first line may come before its parent's clone returns:
            # it starts where a process with a clone in flight is.
            forking = [p for p, (name, _) in self.pending.items() if name in _CLONE_CALLS and p != pid]
            self.cwds[pid] = self.cwds[forking[-1]] if forking and forking[-1] in self.cwds else self.cwds.get("", self.cwd0)
            self.cwds.setdefault("", self.cwds[pid])
            self.version += 1
        return self.cwds[pid]

    def _path(self, arg: str, dirfd: str | None, pid: str) -> str | None:
        """A path argument, absolute and canonical (``safety.canonical``,
        with this process's working directory for ``/proc/self/cwd``), with
        this process's own /proc entries as /proc/self (a pid is different
        every run); None for another traced process's entries."""
        path = _path(arg, dirfd, self._cwd(pid))
        return self._own(safety.canonical(path, self._cwd(pid)), pid) if path else path

    def _own(self, path: str, pid: str) -> str | None:
        """PATH with PID's own /proc entries as /proc/self (its thread's as
        /proc/thread-self), whichever traced process PID is. The entries of
        *another* process of the trace (a parent reading its child's
        ``/proc/CHILD/stat``, a thread another's) have a pid that differs
        every run, and a recycled pid may be anyone's next time: they are
        not granted (None), and a note says so."""
        own = self.tgids.get(pid, pid)  # a thread's /proc/self is its process's
        path = _proc_self(_proc_self(path, pid), own)
        m = _PROC_TASK.match(path)
        if m is not None and m.group(1) == pid:
            return "/proc/thread-self" + path[m.end() :]
        if m is not None and m.group(1) in self.pids:
            self.c.note(f"{path}: another thread's /proc entries (tid {m.group(1)} is a thread of the traced program, and differs every run): not granted; a policy can name only /proc/thread-self")
            return None
        m = _PROC_PID.match(path)
        other = None if m is None else m.group(3) if m.group(3) in self.pids else m.group(1) if m.group(1) in self.pids else None
        if other is None:
            return path
        whose = "its child's" if self.parents.get(other) == pid else "its parent's" if self.parents.get(pid) == other else "another traced process's"
        self.c.note(
            f"{path}: process {pid or '(first)'} read {whose} /proc entries (pid {other} is a process of the traced program, and differs every run): "
            "not granted; a policy can name only a process's own (/proc/self)"
        )
        return None

    def _call(self, name: str, body: str, pid: str = "") -> None:
        c = self.c
        self._add(Syscall(name), "strace")
        res = _RESULT.search(body)
        ok = res is not None and res.group("ret") != "?" and not res.group("ret").startswith("-")
        err = res.group("err") if res else None
        args = _split_args(body[: res.start()] if res else body)
        if name in ("open", "openat", "openat2", "creat"):
            self._open(name, args, ok, err, _fdpath(res.group("rest")) if res else None, pid)
        elif name in _LOOKUP_CALLS and len(args) > _LOOKUP_CALLS[name]:
            i = _LOOKUP_CALLS[name]
            path = self._path(args[i], _dirfd(args[i - 1]) if i else None, pid)
            if path and (ok or err == "ENOENT"):
                self._exists(path, ok)
        elif name in ("execve", "execveat") and ok:
            path = self._path(args[0 if name == "execve" else 1], None, pid) if args else None
            if path:
                self._add(File(os.path.realpath(path) if os.path.exists(path) else path, "x"), name)
        elif ok and (name in _CREATE_CALLS or name in _RENAME_CALLS):
            indexes = _RENAME_CALLS.get(name) or (_CREATE_CALLS[name],)
            for i in indexes:
                path = self._path(args[i], _dirfd(args[i - 1]) if i else None, pid) if len(args) > i else None
                if path:
                    self._add(File(path, "c"), name)
                    self._exists(path, None)
        elif ok and name in _TRUNCATE_CALLS:
            path = self._path(args[0], None, pid) if args else None
            if path:
                self._add(File(path, "w"), name)
        elif ok and name == "chdir" and args:
            path = _path(args[0], None, self._cwd(pid))
            if path:
                self.cwds[pid] = path
                self.version += 1
        elif ok and name == "fchdir" and args:
            directory = _fdpath(args[0][args[0].find("<") :]) if "<" in args[0] else None
            if directory is not None:
                self.cwds[pid] = "/" + directory
                self.version += 1
        elif ok and name in _CLONE_CALLS and res is not None:
            child = res.group("ret")
            if child.isdigit() and child != "0":
                self.cwds.setdefault(child, self._cwd(pid))  # CLONE_FS or not, the child starts here
                self.pids.add(child)
                self.parents[child] = pid
                self.version += 1
                if "CLONE_THREAD" in body:
                    self.tgids[child] = self.tgids.get(pid, pid)
        elif name == "socket" and ok and len(args) >= 2:
            family = _FAMILY.get(args[0])
            sock_type = _TYPE.get(args[1].split("|")[0])
            if family and sock_type:
                self._add(Socket(family, sock_type), "socket")
        elif name == "setsockopt" and len(args) >= 3:
            level = _LEVEL.get(args[1])
            opt = args[2].lower()
            self._add(SockOpt(opt if level else f"{args[1]}/{args[2]}"), "setsockopt")
        elif name == "ioctl" and len(args) >= 2:
            request = _ioctl_request(args[1])
            self._add(Ioctl(request if request is not None else -1, args[1][:60]), "ioctl")
        elif name in ("connect", "bind") and len(args) >= 2:
            port = _PORT.search(args[1])
            proto = "tcp" if "<TCP" in args[0] else "udp" if "<UDP" in args[0] else ""
            if port and proto and (ok or err in ("EINPROGRESS", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH", "EADDRINUSE")):
                self._add(Port(name, proto, int(port.group(1))), name)
            if name == "bind" and port and ok and 0 < int(port.group(1)) < 1024:
                self._add(Capability("net_bind_service"), f"bind to port {port.group(1)}")
        elif ok and name in _ID_CALLS:
            cap, id_args = _ID_CALLS[name]
            own = self.uid if cap == "setuid" else self.gid
            ids = [_int(args[i]) for i in id_args if i < len(args)]
            if own is not None and any(i is not None and i not in (own, -1, 0xFFFFFFFF) for i in ids):
                self._add(Capability(cap), f"{name} to another id")
        elif ok and name == "setgroups" and self.uid == 0:
            self._add(Capability("setgid"), "setgroups")
        elif ok and name in _CHOWN_CALLS and len(args) > _CHOWN_CALLS[name] + 1:
            i = _CHOWN_CALLS[name]
            owner, group = _int(args[i]), _int(args[i + 1])
            if (owner is not None and owner not in (-1, 0xFFFFFFFF, self.uid)) or (group is not None and group not in (-1, 0xFFFFFFFF, self.gid)):
                self._add(Capability("chown"), f"{name} to another owner")

    def _open(self, name: str, args: list[str], ok: bool, err: str | None, fdpath: str | None, pid: str = "") -> None:
        index = 1 if name in ("openat", "openat2") else 0
        if len(args) <= index:
            return
        dirfd = _dirfd(args[0]) if index else None
        flags = args[index + 1] if len(args) > index + 1 else ""
        if not ok:
            if err == "ENOENT":
                path = self._path(args[index], dirfd, pid)
                if path:
                    self._exists(path, False)
            return  # a path that was not there: Landlock and AppArmor never see it
        if "O_PATH" in flags:
            return  # an O_PATH open reads nothing: neither Landlock nor AppArmor checks it
        path = self._path(args[index], dirfd, pid)
        if fdpath is not None and not (path or "").startswith(("/proc/self/", "/proc/thread-self/")):
            # -yy: the file the kernel opened (what Landlock and AppArmor
            # see); a /proc/self path the program named is kept as named.
            path = self._own(safety.canonical("/" + fdpath), pid)
        if path is None:
            return
        if name == "creat" or "O_EXCL" in flags and "O_CREAT" in flags:
            mode = "c"
        elif "O_CREAT" in flags:
            mode = "c" if path in self.absent else "w" if path in self.present else "n"
            self.version += 1  # what it means depended on what came before
        elif any(f in flags for f in _OPEN_WRITE):
            mode = "w"
        elif "O_DIRECTORY" in flags:
            mode = "d"
        else:
            mode = "r"
        self._exists(path, True)
        self._add(File(path, mode), name)


    def _exists(self, path: str, present: bool | None) -> None:
        """What the trace now shows of PATH: there, missing, or neither
        known (created or removed: an open will tell)."""
        now = (path in self.present, path in self.absent)
        want = (present is True, present is False)
        if now != want:
            (self.present.add if want[0] else self.present.discard)(path)
            (self.absent.add if want[1] else self.absent.discard)(path)
            self.version += 1


def _int(arg: str) -> int | None:
    try:
        return int(arg, 0)
    except ValueError:
        return None


def _proc_self(path: str, pid: str) -> str:
    """``/proc/<own pid>/...`` as ``/proc/self/...`` (and a thread's own
    ``/proc/<pid>/task/<tid>/...`` as ``/proc/thread-self/...``)."""
    m = _PROC_PID.match(path)
    if m is None or not pid or m.group(1) != pid and m.group(3) != pid:
        return path
    if m.group(3) == pid:
        return "/proc/thread-self" + path[m.end() :]
    return "/proc/self" + path[len("/proc/") + len(m.group(1)) :]


def _ioctl_request(arg: str) -> int | None:
    """The request number of a decoded ioctl argument ('FIONBIO',
    '0x5421', 'TCGETS'); None when strace printed a name corral does not know."""
    value = _int(arg.split()[0])
    if value is not None:
        return value & 0xFFFFFFFF
    return catalog.ioctls().get(arg.strip())


def read_strace(lines: Iterable[str], collected: Collected, pid_hint: str = "", cwd: str = "/", uid: int | None = None, gid: int | None = None) -> None:
    reader = StraceReader(collected, cwd, uid, gid)
    for line in lines:
        collected.lines += 1
        if not reader.feed(line, pid_hint):
            collected.skip(line)
    reader.flush()
