"""Read strace output: ``-f`` (pid-prefixed), ``-o FILE`` and ``-ff``
(one file per pid), with or without ``-y``/``-yy`` fd decoding.

Understood: every syscall's name; paths of the calls that open, create,
remove or execute (with ``-yy`` the resolved path strace prints after the
returned fd is preferred: it is what Landlock and AppArmor see); socket
families and types; setsockopt (level, option); connect/bind ports.
Calls split over ``<unfinished ...>`` / ``<... resumed>`` are joined.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .events import Collected, File, Port, SockOpt, Socket, Syscall

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


def _unescape(s: str) -> str:
    try:
        return s.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
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
    """Feeds strace lines into a ``Collected``; keeps split calls per pid."""

    def __init__(self, collected: Collected, cwd: str = "/") -> None:
        self.c = collected
        self.cwd = cwd
        self.pending: dict[str, tuple[str, str]] = {}

    def feed(self, line: str, pid_hint: str = "") -> bool:
        """Read one line; False if it is not strace output."""
        line = line.rstrip("\n")
        if line.startswith(("+++", "---")) or " +++ " in line or " --- " in line:
            return True
        m = _LINE.match(line)
        if m is None:
            return False
        pid = m.group("pid") or pid_hint
        if m.group("rname"):
            name, head = self.pending.pop(pid, (m.group("rname"), ""))
            body = head + m.group("rargs")
        else:
            name, body = m.group("name"), m.group("args")
            if body.endswith("<unfinished ...>"):
                self.pending[pid] = (name, body[: -len("<unfinished ...>")])
                return True
        self._call(name, body)
        return True

    def _call(self, name: str, body: str) -> None:
        c = self.c
        c.add(Syscall(name), "strace")
        res = _RESULT.search(body)
        ok = res is not None and res.group("ret") != "?" and not res.group("ret").startswith("-")
        err = res.group("err") if res else None
        args = _split_args(body[: res.start()] if res else body)
        if name in ("open", "openat", "openat2", "creat"):
            self._open(name, args, ok, err, _fdpath(res.group("rest")) if res else None)
        elif name in ("execve", "execveat") and ok:
            path = _path(args[0 if name == "execve" else 1], None, self.cwd)
            if path:
                c.add(File(os.path.realpath(path) if os.path.exists(path) else path, "x"), name)
        elif ok and (name in _CREATE_CALLS or name in _RENAME_CALLS):
            indexes = _RENAME_CALLS.get(name) or (_CREATE_CALLS[name],)
            for i in indexes:
                path = _path(args[i], _dirfd(args[i - 1]) if i else None, self.cwd) if len(args) > i else None
                if path:
                    c.add(File(path, "c"), name)
        elif ok and name in _TRUNCATE_CALLS:
            path = _path(args[0], None, self.cwd)
            if path:
                c.add(File(path, "w"), name)
        elif ok and name in ("chdir",):
            path = _path(args[0], None, self.cwd)
            if path:
                self.cwd = path
        elif name == "socket" and ok and len(args) >= 2:
            family = _FAMILY.get(args[0])
            sock_type = _TYPE.get(args[1].split("|")[0])
            if family and sock_type:
                c.add(Socket(family, sock_type), "socket")
        elif name == "setsockopt" and len(args) >= 3:
            level = _LEVEL.get(args[1])
            opt = args[2].lower()
            c.add(SockOpt(opt if level else f"{args[1]}/{args[2]}"), "setsockopt")
        elif name in ("connect", "bind") and len(args) >= 2:
            port = _PORT.search(args[1])
            proto = "tcp" if "<TCP" in args[0] else "udp" if "<UDP" in args[0] else ""
            if port and proto and (ok or err in ("EINPROGRESS", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH", "EADDRINUSE")):
                c.add(Port(name, proto, int(port.group(1))), name)

    def _open(self, name: str, args: list[str], ok: bool, err: str | None, fdpath: str | None) -> None:
        if not ok:
            return  # a path that was not there: Landlock and AppArmor never see it
        index = 1 if name in ("openat", "openat2") else 0
        if len(args) <= index:
            return
        dirfd = _dirfd(args[0]) if index else None
        path = ("/" + fdpath) if fdpath is not None else _path(args[index], dirfd, self.cwd)
        if path is None:
            return
        flags = args[index + 1] if len(args) > index + 1 else ""
        if name == "creat" or "O_CREAT" in flags:
            mode = "c" if "O_EXCL" in flags or name == "creat" else "w"
        elif any(f in flags for f in _OPEN_WRITE):
            mode = "w"
        elif "O_DIRECTORY" in flags:
            mode = "d"
        else:
            mode = "r"
        self.c.add(File(path, mode), name)


def read_strace(lines: Iterable[str], collected: Collected, pid_hint: str = "", cwd: str = "/") -> None:
    reader = StraceReader(collected, cwd)
    for line in lines:
        collected.lines += 1
        if not reader.feed(line, pid_hint):
            collected.skip(line)
