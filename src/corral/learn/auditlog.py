"""Read audit logs, detecting the format line by line.

* AppArmor events (``apparmor="ALLOWED|DENIED|AUDIT"``) as the kernel writes
  them to dmesg / kern.log / syslog (``audit: type=1400 audit(...)``), as
  auditd writes them (``type=AVC msg=audit(...)``) and as journald shows
  them (short output, and ``-o json`` / ``-o export`` with MESSAGE). In
  ``-o json`` only entries whose ``_TRANSPORT`` is the kernel's or audit's
  are events: any process can log text that looks like one (the text
  formats cannot tell, so prefer ``-o json`` or the audit log);
* seccomp events (``type=SECCOMP`` / ``type=1326``), the syscall number
  mapped to its name by the event's ``arch``;
* Landlock's denials (``type=1423`` / ``LANDLOCK_ACCESS``, Landlock ABI 7,
  where audit is enabled): the path and the blocked rights;
* the record ``corral run --log-to FILE`` writes (JSON lines after a
  ``{"corral_run_log": 1, ...}`` header);
* strace output (``-f``, ``-o``, ``-ff``).

Each event remembers the AppArmor profile (or the corral policy, for a
run record) it was seen under, so that ``corral learn`` can keep one
service's needs out of another's policy.

Lines nothing understands are counted, with samples, and never fatal.
Only lines carrying an event are parsed field by field: the rest are
recognised by a substring test, which keeps large logs fast.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO

from .events import Call, Capability, Collected, Event, File, Port, SockOpt, Socket, Syscall
from .strace import StraceReader, _proc_self

_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
_ARCH = {"c000003e": "x86_64", "c00000b7": "aarch64"}
_FILE_OPS = {
    "open", "getattr", "file_mmap", "exec", "mkdir", "rmdir", "unlink", "rename_src", "rename_dest", "link",
    "symlink", "mknod", "truncate", "chmod", "chown", "file_perm", "file_lock", "file_receive", "file_inherit", "setattr",
}  # fmt: skip
_NET_OPS = {"create", "connect", "bind", "listen", "accept", "sendmsg", "recvmsg", "getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown", "file_perm"}
_IGNORED = {"STATUS"}
#: journald transports only the kernel writes to: a MESSAGE of any other is
#: a process's own text, whatever it looks like.
_TRUSTED_TRANSPORTS = ("kernel", "audit")
PROGRESS_EVERY = 200_000


#: Fields AppArmor writes hex-encoded (unquoted) when they hold odd characters.
_HEX_FIELDS = {"name", "name2", "target", "profile", "peer", "comm", "path", "addr"}


def _value(key: str, raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1]
    if key in _HEX_FIELDS and len(raw) % 2 == 0 and len(raw) >= 2 and all(c in "0123456789ABCDEFabcdef" for c in raw):
        try:
            return bytes.fromhex(raw).decode("utf-8", "replace")  # AppArmor hex-encodes odd names
        except ValueError:
            return raw
    return raw


def _mode(mask: str, operation: str) -> str:
    if "x" in mask or operation == "exec":
        return "x"
    if "c" in mask or "d" in mask or operation in ("mkdir", "rmdir", "unlink", "rename_src", "rename_dest", "link", "symlink", "mknod"):
        return "c"
    if "w" in mask or "a" in mask or "k" in mask or "l" in mask:
        return "w"
    if "m" in mask:
        return "m"
    return "r"


class AuditReader:
    def __init__(self, collected: Collected) -> None:
        self.c = collected
        self.strace = StraceReader(collected)
        self.seccomp_names: dict[tuple[str, int], str] = {}
        self.weight = 1  # how many identical lines the current one stands for
        self.profile = ""  # of the event being read
        self.record_policy = ""  # of the run record being read

    def _add(self, event: Event, by: str) -> None:
        self.c.add(event, by, self.weight, self.profile)

    def feed(self, line: str) -> None:
        c = self.c
        c.lines += 1
        at = line.find('apparmor="')
        if at != -1:
            self._apparmor(line[at:], line)
            return
        if "type=1326" in line or "type=SECCOMP" in line:
            self._seccomp(line)
            return
        if "type=1423" in line or "type=LANDLOCK_ACCESS" in line:
            self._landlock(line)
            return
        stripped = line.lstrip()
        if stripped.startswith(('{"corral_run_log"', '{"event"')):
            self._record(stripped, line)
            return
        if stripped.startswith("{"):
            self._journal_json(stripped, line)
            return
        if stripped.startswith("__CURSOR=") or stripped.startswith("_") and "=" in stripped[:40]:
            return  # journalctl -o export: a field of an entry; MESSAGE lines are handled above
        if not stripped or not self.strace.feed(line):
            if stripped:
                c.skip(line)

    def _journal_json(self, text: str, line: str) -> None:
        try:
            entry = json.loads(text)
        except ValueError:
            self.c.skip(line)
            return
        message = entry.get("MESSAGE") if isinstance(entry, dict) else None
        if isinstance(message, list):  # journald encodes non-UTF-8 messages as byte arrays
            message = bytes(x for x in message if isinstance(x, int) and 0 <= x < 256).decode("utf-8", "replace")
        if not isinstance(message, str):
            self.c.skip(line)
            return
        transport = entry.get("_TRANSPORT")
        if transport is not None and transport not in _TRUSTED_TRANSPORTS:
            # Any process can log text that looks like an event; journald's
            # _TRANSPORT (which a client cannot set) says who wrote it.
            self.c.skip(f"not an event: logged by a process (_TRANSPORT={str(transport)[:20]}), not the kernel: {message}")
            return
        self.c.lines -= 1
        self.feed(message)

    def _record(self, text: str, line: str) -> None:
        """One line of a ``corral run --log-to`` record."""
        try:
            entry = json.loads(text)
        except ValueError:
            self.c.skip(line)
            return
        if not isinstance(entry, dict):
            self.c.skip(line)
            return
        if "corral_run_log" in entry:
            policy = entry.get("policy")
            self.record_policy = policy if isinstance(policy, str) else ""
            return
        kind, name, count = entry.get("event"), entry.get("name"), entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            count = 1
        event: Event | None = None
        if kind == "call" and isinstance(name, str):
            args = entry.get("args")
            ok_args = isinstance(args, list) and all(isinstance(a, int) for a in args)
            event = Call(name, tuple(args) if ok_args else None)  # type: ignore[arg-type]
        elif kind == "capability" and isinstance(name, str):
            event = Capability(name)
        elif kind == "sockopt" and isinstance(name, str):
            event = SockOpt(name)
        elif kind == "socket" and isinstance(entry.get("family"), str) and isinstance(entry.get("type"), str):
            event = Socket(entry["family"], entry["type"])
        if event is None:
            self.c.skip(line)
            return
        self.profile, weight = self.record_policy, self.weight
        self.weight = weight * count
        self._add(event, "corral run --log")
        self.profile, self.weight = "", weight

    def _landlock(self, line: str) -> None:
        """A Landlock denial: what was blocked where."""
        fields = {k: _value(k, v) for k, v in _FIELD.findall(line)}
        blockers = fields.get("blockers", "").split(",")
        path = fields.get("path", "")
        by = "landlock denied " + fields.get("blockers", "")
        if path.startswith("/"):
            if any(b in ("fs.make_reg", "fs.make_dir", "fs.make_sym", "fs.make_sock", "fs.make_fifo", "fs.remove_file", "fs.remove_dir", "fs.refer") for b in blockers):
                self._add(File(path.rstrip("/") + "/*", "c"), by)  # the directory where something was made or removed
            if any(b in ("fs.write_file", "fs.truncate") for b in blockers):
                self._add(File(path, "w"), by)
            if "fs.read_file" in blockers:
                self._add(File(path, "r"), by)
            if "fs.read_dir" in blockers:
                self._add(File(path, "d"), by)
            if "fs.execute" in blockers:
                self._add(File(path, "x"), by)
            return
        port = fields.get("dest") if "net.connect_tcp" in blockers else fields.get("src") if "net.bind_tcp" in blockers else None
        if port and port.isdigit():
            self._add(Port("connect" if "net.connect_tcp" in blockers else "bind", "tcp", int(port)), by)
            return
        self.c.skip(line)

    def _apparmor(self, text: str, line: str) -> None:
        fields = {k: _value(k, v) for k, v in _FIELD.findall(text)}
        verdict = fields.get("apparmor")
        if verdict in _IGNORED:
            return
        self.profile = fields.get("profile", "")
        try:
            self._apparmor_event(fields, verdict, line)
        finally:
            self.profile = ""

    def _apparmor_event(self, fields: dict[str, str], verdict: str | None, line: str) -> None:
        op = fields.get("operation", "")
        by = f"apparmor {verdict} {op}"
        c = self.c
        if op == "capable" and "capname" in fields:
            self._add(Capability(fields["capname"]), by)
        elif "family" in fields and (op in _NET_OPS):
            sock_type = fields.get("sock_type", "")
            if sock_type:
                self._add(Socket(fields["family"], sock_type), by)
            proto = {"stream": "tcp", "dgram": "udp"}.get(sock_type, "")
            if proto and op in ("bind", "listen", "accept") and fields.get("lport", "0").isdigit() and int(fields.get("lport", "0")):
                self._add(Port("bind", proto, int(fields["lport"])), by)
            if proto and op == "connect" and fields.get("fport", "").isdigit():
                self._add(Port("connect", proto, int(fields["fport"])), by)
        elif op in _FILE_OPS and "name" in fields and fields["name"].startswith("/"):
            # the process's own /proc entries (pid: the task the kernel logged) as /proc/self
            name = _proc_self(fields["name"], fields.get("pid", "")) if fields["name"].startswith("/proc/") else fields["name"]
            self._add(File(name, _mode(fields.get("requested_mask", ""), op)), by)
        else:
            c.skip(line)

    def _seccomp(self, line: str) -> None:
        fields = dict(_FIELD.findall(line))
        arch = _ARCH.get(fields.get("arch", "").lower())
        nr = fields.get("syscall", "")
        if arch is None or not nr.isdigit():
            self.c.skip(line)
            return
        key = (arch, int(nr))
        name = self.seccomp_names.get(key)
        if name is None:
            from .. import _seccomp

            lib = _seccomp._lib()
            try:
                name = lib.resolve_syscall(getattr(lib.Arch, arch.upper()), int(nr)).decode()
            except ValueError:
                self.c.skip(line)
                return
            self.seccomp_names[key] = name
        self._add(Syscall(name), "seccomp")


def read_logs(streams: Iterable[Iterable[str]], collected: Collected, *, progress: bool = False) -> None:
    """Stream every line of every input into ``collected``."""
    for stream in streams:
        reader = AuditReader(collected)
        for line in stream:
            reader.feed(line)
            if progress and collected.lines % PROGRESS_EVERY == 0:
                print(f"\rcorral learn: {collected.lines:,} lines, {len(collected.events):,} distinct events", end="", file=sys.stderr, flush=True)
    if progress and collected.lines >= PROGRESS_EVERY:
        print(file=sys.stderr)


def _seccomp_key(line: bytes) -> bytes | None:
    at = line.find(b" arch=")
    if at < 0:
        return None
    end = line.find(b" compat=", at)
    return b"seccomp" + line[at : end if end > 0 else len(line)]


def _progress(done: int, total: int, lines: int, distinct: int) -> None:
    """A one-line progress bar on stderr (only when it is a terminal)."""
    if total:
        share = min(1.0, done / total)
        bar = "#" * int(share * 30)
        head = f"[{bar:<30}] {share:4.0%} of {total / 1e6:,.0f} MB"
    else:
        head = f"{done / 1e6:,.0f} MB"
    print(f"\rcorral learn: {head}, {lines:,} lines, {distinct:,} distinct events", end="", file=sys.stderr, flush=True)


class _Tally:
    """What one pass over a byte range found: event keys counted, lines for
    the line reader (strace, journald JSON) in order, and the rest counted."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.events = 0
        self.feeds: list[bytes] = []
        self.unknown = 0
        self.samples: list[bytes] = []

    def scan(self, lines: list[bytes]) -> None:
        counts, get = self.counts, self.counts.get
        for line in lines:  # the hot loop: inlined, substring tests only
            at = line.find(b'apparmor="')
            if at >= 0:
                key = line[at:]
                p = key.find(b" pid=")
                if p >= 0 and b'name="/proc/' not in key:  # a /proc path's pid says whose entries they are
                    q = key.find(b" ", p + 5)
                    key = key[:p] + key[q:] if q >= 0 else key[:p]
            elif b"type=1326" in line or b"type=SECCOMP" in line:
                seccomp_key = _seccomp_key(line)
                if seccomp_key is None:
                    self._skip(line)
                    continue
                key = seccomp_key
            elif b"type=1423" in line or b"type=LANDLOCK_ACCESS" in line:
                b = line.find(b"blockers=")
                if b < 0:
                    self._skip(line)
                    continue
                key = b"type=1423 " + line[b:]
            elif b") = " in line or b"resumed>" in line or line.lstrip()[:1] == b"{" or b"<unfinished" in line or b"+++ " in line or b"--- SIG" in line:
                self.feeds.append(line)
                continue
            else:
                if line.strip():
                    self._skip(line)
                continue
            counts[key] = get(key, 0) + 1
            self.events += 1

    def _skip(self, line: bytes) -> None:
        self.unknown += 1
        if len(self.samples) < 5:
            self.samples.append(line)

    def merge(self, other: "_Tally") -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.events += other.events
        self.feeds += other.feeds
        self.unknown += other.unknown
        self.samples = (self.samples + other.samples)[:5]

    def dump(self) -> bytes:
        return marshal.dumps((self.counts, self.events, self.feeds, self.unknown, self.samples))

    @classmethod
    def load(cls, data: bytes) -> "_Tally":
        tally = cls()
        tally.counts, tally.events, tally.feeds, tally.unknown, tally.samples = marshal.loads(data)
        return tally


def _scan_range(fh: "BinaryIO", start: int, end: int | None, tally: _Tally, chunk: int, on_block: "Callable[[int], None] | None" = None) -> None:
    """Scan the lines that begin in [start, end) (end None: to the end)."""
    fh.seek(max(0, start - 1))
    if start > 0:
        fh.readline()  # the line in progress at start-1 belongs to the range before
    pos = fh.tell()
    rest = b""
    while end is None or pos < end:
        want = chunk if end is None else min(chunk, end - pos)
        block = fh.read(want)
        if not block:
            break
        pos += len(block)
        block = rest + block
        cut = block.rfind(b"\n")
        if cut < 0:
            rest = block
            continue
        tally.scan(block[:cut].split(b"\n"))
        rest = block[cut + 1 :]
        if on_block:
            on_block(pos)
    if rest:  # the last line began inside the range: finish it even past `end`
        rest += fh.readline() if end is not None else b""
        tally.scan([rest.rstrip(b"\n")])


#: Below this size a file is read by one process: forking costs more.
PARALLEL_FROM = 32 << 20


def read_log_files(paths: list[str], collected: Collected, *, progress: bool = False, chunk: int = 1 << 20, parallel_from: int = PARALLEL_FROM) -> None:
    """Like ``read_logs`` for files, fast: an event line is reduced to the
    part that identifies the event (no timestamp, serial or pid) with a few
    substring searches and counted; each distinct event is parsed once at
    the end. Memory grows with distinct events, not lines; everything else
    (strace, journald JSON, noise) goes through the line reader, in order.
    A large file is split in two halves at line boundaries and the second
    half is scanned by a forked process on the second core.

    (Whole-block regular expressions were tried and were slower: Python's
    regex engine spends more per line than three ``bytes.find`` calls.)
    """
    total = sum(os.path.getsize(p) for p in paths if p != "-" and os.path.isfile(p))
    tally = _Tally()
    done_before = 0
    for path in paths:
        if path == "-":
            _scan_range(sys.stdin.buffer, 0, None, tally, chunk)
            continue
        size = os.path.getsize(path)
        show = (lambda pos, base=done_before, share=1.0: _progress(base + int(pos * share), total, 0, len(tally.counts))) if progress else None
        with open(path, "rb") as fh:
            if size >= parallel_from and (os.cpu_count() or 1) > 1:
                tally.merge(_scan_in_halves(fh, size, chunk, show))
            else:
                _scan_range(fh, 0, None, tally, chunk, show)
        done_before += size
    if progress:
        _progress(total, total, tally.events + tally.unknown, len(tally.counts))
        print(file=sys.stderr)
    reader = AuditReader(collected)
    for line in tally.feeds:
        reader.feed(line.decode("utf-8", "replace"))
    collected.lines += tally.unknown
    collected.unknown += tally.unknown
    collected.samples = (collected.samples + [s.decode("utf-8", "replace")[:200] for s in tally.samples])[:5]
    for key, count in tally.counts.items():
        text = key.decode("utf-8", "replace")
        reader.weight = count
        reader.feed("type=SECCOMP " + text[len("seccomp") :] if text.startswith("seccomp") else text)
    reader.weight = 1
    collected.lines += tally.events - len(tally.counts)


def _scan_in_halves(fh: "BinaryIO", size: int, chunk: int, show: "Callable[[int], None] | None") -> _Tally:
    mid = size // 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the second half, on the other core
        code = 0
        try:
            os.close(read_end)
            theirs = _Tally()
            with open(fh.name, "rb") as own:
                _scan_range(own, mid, None, theirs, chunk)
            data = theirs.dump()
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    mine = _Tally()
    _scan_range(fh, 0, mid, mine, chunk, (lambda pos: show(pos * 2)) if show else None)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        mine_rest = _Tally()
        _scan_range(fh, mid, None, mine_rest, chunk)  # the helper failed: do its half here
        mine.merge(mine_rest)
        return mine
    mine.merge(_Tally.load(data))
    return mine
