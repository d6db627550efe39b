"""Read audit logs, detecting the format line by line.

* AppArmor events (``apparmor="ALLOWED|DENIED|AUDIT"``) as the kernel writes
  them to dmesg / kern.log / syslog (``audit: type=1400 audit(...)``), as
  auditd writes them (``type=AVC msg=audit(...)``) and as journald shows
  them (short output, and ``-o json`` / ``-o export``, ``journal``). Who
  wrote a line is decided before anything is read from it (``origin``):
  any process can log text that looks like an event, so only auditd's
  lines and journal entries of the kernel's transports are proven, the
  kernel's shape in a text format is read with a warning, and every other
  line carrying an event's text is counted as forged, never learned;
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
recognised by a substring test, which keeps large logs fast. Bytes that
are not UTF-8 are kept as they are (``surrogateescape``), never replaced.
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
from . import journal, origin
from .strace import StraceReader, _proc_self

_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
_ARCH = {"c000003e": "x86_64", "c00000b7": "aarch64"}
_FILE_OPS = {
    "open", "getattr", "file_mmap", "exec", "mkdir", "rmdir", "unlink", "rename_src", "rename_dest", "link",
    "symlink", "mknod", "truncate", "chmod", "chown", "file_perm", "file_lock", "file_receive", "file_inherit", "setattr",
}  # fmt: skip
_NET_OPS = {"create", "connect", "bind", "listen", "accept", "sendmsg", "recvmsg", "getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown", "file_perm"}
_IGNORED = {"STATUS"}
PROGRESS_EVERY = 200_000


#: Fields AppArmor writes hex-encoded (unquoted) when they hold odd characters.
_HEX_FIELDS = {"name", "name2", "target", "profile", "peer", "comm", "path", "addr"}


def _value(key: str, raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1]
    if key in _HEX_FIELDS and len(raw) % 2 == 0 and len(raw) >= 2 and all(c in "0123456789ABCDEFabcdef" for c in raw):
        try:
            return bytes.fromhex(raw).decode("utf-8", "surrogateescape")  # AppArmor hex-encodes odd names; a non-UTF-8 byte stays that byte
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
    """Turns event text into events. Who wrote a line is decided before
    (``_Tally``, with ``origin``): only what the kernel or auditd wrote,
    or what a text format shows in the kernel's shape, reaches ``event``."""

    def __init__(self, collected: Collected) -> None:
        self.c = collected
        self.strace = StraceReader(collected)
        self.seccomp_names: dict[tuple[str, int], str] = {}
        self.weight = 1  # how many identical lines the current one stands for
        self.profile = ""  # of the event being read
        self.record_policy = ""  # of the run record being read
        self.where = ""  # FILE:LINE of the line being read, for samples

    def _add(self, event: Event, by: str) -> None:
        self.c.add(event, by, self.weight, self.profile)

    def event(self, kind: str, text: str) -> None:
        """One event's text (from its marker on), KIND as ``_kind`` says."""
        if kind == "apparmor":
            self._apparmor(text, text)
        elif kind == "seccomp":
            self._seccomp(text)
        else:
            self._landlock(text)

    def line(self, line: str) -> None:
        """A line read in order: a run record's, or strace's."""
        stripped = line.lstrip()
        if stripped.startswith(('{"corral_run_log"', '{"event"')):
            self._record(stripped, line)
        elif not self.strace.feed(line):
            self.c.skip(f"{self.where}: {line}" if self.where else line)

    def _record(self, text: str, line: str) -> None:
        """One line of a ``corral run --log-to`` record."""
        try:
            entry = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than Python's stack
            self.c.skip(f"{self.where}: not JSON ({type(exc).__name__}): {line}")
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
    """Stream every line of every input into ``collected`` (as
    ``read_log_files`` does for files: the same scan, one line at a time)."""
    for stream in streams:
        reader = AuditReader(collected)
        tally = _Tally(reader, getattr(stream, "name", "<input>"))
        for n, line in enumerate(stream, 1):
            tally.scan([line.rstrip("\n").encode("utf-8", "surrogateescape")])
            if progress and n % PROGRESS_EVERY == 0:
                print(f"\rcorral learn: {n:,} lines, {len(tally.counts):,} distinct events", end="", file=sys.stderr, flush=True)
        tally.finish()
        tally.replay(reader)
        if progress:
            print(file=sys.stderr)


def _seccomp_key(line: bytes) -> bytes | None:
    at = line.find(b" arch=")
    if at < 0:
        return None
    end = line.find(b" compat=", at)
    return line[at : end if end > 0 else len(line)]


def _progress(done: int, total: int, lines: int, distinct: int) -> None:
    """A one-line progress bar on stderr (only when it is a terminal)."""
    if total:
        share = min(1.0, done / total)
        bar = "#" * int(share * 30)
        head = f"[{bar:<30}] {share:4.0%} of {total / 1e6:,.0f} MB"
    else:
        head = f"{done / 1e6:,.0f} MB"
    print(f"\rcorral learn: {head}, {lines:,} lines, {distinct:,} distinct events", end="", file=sys.stderr, flush=True)


#: The event kinds, by the first byte of a tally key.
_KINDS = {ord("a"): "apparmor", ord("s"): "seccomp", ord("l"): "landlock"}
#: journald's audit-transport MESSAGE (``SECCOMP auid=...``) as auditd writes it.
_JOURNAL_TYPES = {b"AVC": b"AVC", b"SECCOMP": b"SECCOMP", b"LANDLOCK_ACCESS": b"1423", b"AUDIT1400": b"1400", b"AUDIT1326": b"1326", b"AUDIT1423": b"1423"}


def _marker(line: bytes) -> tuple[str, int]:
    """Which event LINE's text is (``a``pparmor, ``s``eccomp, ``l``andlock,
    or "") and where it starts."""
    at = line.find(b'apparmor="')
    if at >= 0:
        return "a", at
    for kind, markers in (("s", (b"type=1326", b"type=SECCOMP")), ("l", (b"type=1423", b"type=LANDLOCK_ACCESS"))):
        for marker in markers:
            at = line.find(marker)
            if at >= 0:
                return kind, at
    return "", -1


def format_of(first: bytes) -> str:
    """A log's format, by its first line: ``json`` (``journalctl -o json``,
    or a run record), ``export`` (``-o export``) or ``text``. Decided once:
    inside a text log a process's multi-line message prints lines of its
    choosing (bare under ``-o cat``, indented under short's header), a JSON
    object or ``__CURSOR=`` among them, whose ``_TRANSPORT=kernel`` it wrote
    itself."""
    if first.lstrip()[:1] == b"{":
        return "json"
    return "export" if first.startswith(b"__CURSOR=") else "text"


def _looks_like_strace(line: bytes) -> bool:
    return b") = " in line or b"resumed>" in line or b"<unfinished" in line or b"+++ " in line or b"--- SIG" in line


class _Tally:
    """What one pass over lines found: event keys counted (who wrote each
    decided first, by ``origin``), lines for the line reader (strace, run
    records) handed to it at once, in order (``sink``; without one they are
    counted as not understood), forged lines and the rest counted with
    samples. Memory grows with distinct events, never with lines.

    A key is the event's kind and the part of the line that identifies
    the event (no timestamp, serial or pid); how many event lines a text
    format carried is counted apart.
    """

    def __init__(self, sink: "AuditReader | None" = None, name: str = "", fmt: str | None = None) -> None:
        self.name = name
        self.format = fmt  # format_of the stream's first line (None: not seen yet)  # the file, for located samples
        self.lineno = 0  # lines scanned so far
        self.counts: dict[bytes, int] = {}
        self.events = 0
        self.sink = sink
        self.fed = 0
        self.unknown = 0
        self.samples: list[tuple[int, bytes]] = []  # (line number, why: text)
        self.forged = 0
        self.forged_samples: list[tuple[int, bytes]] = []
        self.text = 0  # event lines read from a text format
        self.record = False  # the stream is a `corral run --log-to` record
        self.export: journal.Export | None = None

    def scan(self, lines: list[bytes]) -> None:
        counts, get = self.counts, self.counts.get
        for line in lines:  # the hot loop: substring tests first
            self.lineno += 1
            if self.format is None:
                self.format = format_of(line)
            if self.export is not None:
                entry = self.export.line(line)
                if entry is not None:
                    self._entry(entry, line)
                continue
            first = line[:1]
            if first == b"{" or first in b" \t" and line.lstrip()[:1] == b"{":
                self._json(line)
                continue
            if first == b"_" and line.startswith(b"__CURSOR="):
                if self.format != "export":
                    self._forge(line, "a journal export entry inside a log of another format (a process's multi-line message prints one)")
                    continue
                self.export = journal.Export()  # journalctl -o export: entries from here on
                self.export.line(line)
                continue
            kind, at = _marker(line)
            if not kind:
                if _looks_like_strace(line):
                    self._feed(line)
                elif line.strip():
                    self._skip(line)
                continue
            who = origin.of(line, at)
            if who == origin.FORGED:
                self._forge(line)
                continue
            key = self._key(kind, line, at)
            if key is None:
                self._skip(line)
                continue
            counts[key] = get(key, 0) + 1
            self.events += 1
            if who == origin.TEXT:
                self.text += 1

    @staticmethod
    def _key(kind: str, line: bytes, at: int) -> bytes | None:
        head = kind.encode()
        if kind == "a":
            key = line[at:]
            p = key.find(b" pid=")
            proc = key.find(b'name="/proc/')
            if p >= 0 and not (proc >= 0 and key[proc + 12 : proc + 13].isdigit()):  # /proc/PID/...: the pid says whose entries
                q = key.find(b" ", p + 5)
                key = key[:p] + key[q:] if q >= 0 else key[:p]
            return head + key
        if kind == "s":
            seccomp = _seccomp_key(line)
            return None if seccomp is None else head + seccomp
        b = line.find(b"blockers=")
        return None if b < 0 else head + line[b:]

    def _json(self, line: bytes) -> None:
        stripped = line.strip()
        if stripped.startswith((b'{"corral_run_log"', b'{"event"')):
            # A run record is a file corral wrote whole, its header first: a
            # record's line anywhere else (a journal dumped with -o cat, where
            # any process writes lines) is not one.
            if self.lineno == 1 and stripped.startswith(b'{"corral_run_log"'):
                self.record = True
            if self.record:
                self._feed(line)  # read in order: its header names the policy
            else:
                self._forge(line, "a run record's line, but the file does not begin with a record's header")
            return
        if self.format != "json":
            self._forge(line, "a journal JSON entry inside a log of another format (a process's multi-line message prints one)")
            return
        self._entry(journal.from_json(stripped), line)

    def _entry(self, entry: "journal.Entry", line: bytes) -> None:
        """A journal entry: its MESSAGE is an event only if the entry says
        the kernel wrote it, or (not saying) has the kernel's shape."""
        message = entry.message
        if entry.origin == origin.PROVEN:
            name, _, rest = message.partition(b" ")
            if name in _JOURNAL_TYPES:  # the audit transport's form: as auditd writes it
                message = b"type=" + _JOURNAL_TYPES[name] + b" msg=audit(0.0:0): " + rest
        kind, at = _marker(message)
        if entry.problem:
            if kind:
                self._forge(line if len(line) < 300 else message, entry.problem)
            else:
                self._skip(line, entry.problem)
            return
        if not kind:
            self._skip(line)
            return
        key = self._key(kind, message, at) if entry.origin != origin.FORGED else None
        if key is None:
            self._forge(message, "a journal entry in no shape the kernel writes") if entry.origin == origin.FORGED else self._skip(line)
            return
        self.counts[key] = self.counts.get(key, 0) + 1
        self.events += 1
        if entry.origin == origin.TEXT:
            self.text += 1

    def finish(self) -> None:
        """The end of a stream: an export's last entry."""
        if self.export is not None:
            entry = self.export.finish()
            if entry is not None:
                self._entry(entry, b"")
            self.export = None

    def _feed(self, line: bytes) -> None:
        self.fed += 1
        if self.sink is None:
            self._skip(line)
            return
        self.sink.c.lines += 1
        self.sink.where = f"{self.name}:{self.lineno}"
        self.sink.line(line.decode("utf-8", "surrogateescape"))

    def _skip(self, line: bytes, why: str = "") -> None:
        self.unknown += 1
        if len(self.samples) < 5:
            self.samples.append((self.lineno, ((why + ": ").encode() if why else b"") + line[:200]))

    def _forge(self, line: bytes, why: str = "not in a shape the kernel or auditd writes") -> None:
        self.forged += 1
        if len(self.forged_samples) < 5:
            self.forged_samples.append((self.lineno, why.encode() + b": " + line[:200]))

    def merge(self, other: "_Tally") -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.events += other.events
        self.unknown += other.unknown
        self.samples = (self.samples + [(n + self.lineno, t) for n, t in other.samples])[:5]  # OTHER's lines came after ours
        self.forged += other.forged
        self.forged_samples = (self.forged_samples + [(n + self.lineno, t) for n, t in other.forged_samples])[:5]
        self.lineno += other.lineno
        self.text += other.text

    def dump(self) -> bytes:
        return marshal.dumps((self.counts, self.events, self.fed, self.unknown, self.samples, self.forged, self.forged_samples, self.text, self.lineno))

    @classmethod
    def load(cls, data: bytes) -> "_Tally":
        tally = cls()
        tally.counts, tally.events, tally.fed, tally.unknown, tally.samples, tally.forged, tally.forged_samples, tally.text, tally.lineno = marshal.loads(data)
        return tally

    def replay(self, reader: AuditReader) -> None:
        """Each distinct event parsed once, weighted by how often it was seen."""
        c = reader.c
        reader.strace.flush()
        c.lines += self.unknown + self.forged + self.events
        c.unknown += self.unknown
        c.samples = (c.samples + [f"{self.name}:{n}: " + s.decode("utf-8", "surrogateescape") for n, s in self.samples])[:5]
        c.forged += self.forged
        c.forged_samples = (c.forged_samples + [f"{self.name}:{n}: " + s.decode("utf-8", "surrogateescape") for n, s in self.forged_samples])[:5]
        c.text_events += self.text
        for key, count in self.counts.items():
            kind, text = _KINDS[key[0]], key[1:].decode("utf-8", "surrogateescape")
            reader.weight = count
            reader.event(kind, "type=SECCOMP " + text if kind == "seccomp" else text)
        reader.weight = 1


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


def _serial(head: bytes) -> bool:
    """Whether a file beginning with HEAD must be read in order by one
    process: a journal export (an entry spans lines, and a binary field
    anything), or mostly lines only the line reader understands (strace,
    run records): a second process would only hand them back."""
    if head.startswith(b"__CURSOR=") or b"\n__CURSOR=" in head:
        return True
    lines = head.split(b"\n")[:-1] or [head]
    ordered = sum(1 for line in lines if _looks_like_strace(line) or line.startswith((b'{"corral_run_log"', b'{"event"')))
    return ordered * 10 > len(lines)


def read_log_files(paths: list[str], collected: Collected, *, progress: bool = False, chunk: int = 1 << 20, parallel_from: int = PARALLEL_FROM) -> None:
    """Like ``read_logs`` for files, fast: an event line is reduced to the
    part that identifies the event (no timestamp, serial or pid) with a few
    substring searches and counted; each distinct event is parsed once at
    the end. Memory grows with distinct events, not lines; everything else
    (strace, run records) goes through the line reader at once, in order.
    A large file of events is split in two halves at line boundaries and the
    second half is scanned by a forked process on the second core.

    (Whole-block regular expressions were tried and were slower: Python's
    regex engine spends more per line than three ``bytes.find`` calls.)
    """
    total = sum(os.path.getsize(p) for p in paths if p != "-" and os.path.isfile(p))
    done_before = 0
    for path in paths:
        reader = AuditReader(collected)
        tally = _Tally(reader, "<stdin>" if path == "-" else path)
        if path == "-":
            _scan_range(sys.stdin.buffer, 0, None, tally, chunk)
        else:
            size = os.path.getsize(path)
            show = (lambda pos, base=done_before, share=1.0: _progress(base + int(pos * share), total, 0, len(tally.counts))) if progress else None
            with open(path, "rb") as fh:
                if size >= parallel_from and (os.cpu_count() or 1) > 1 and not _serial(fh.read(1 << 16)):
                    _scan_in_halves(fh, size, chunk, show, tally)
                else:
                    _scan_range(fh, 0, None, tally, chunk, show)
            done_before += size
        tally.finish()
        tally.replay(reader)
    if progress:
        _progress(total, total, collected.lines, len(collected.events))
        print(file=sys.stderr)


def _scan_in_halves(fh: "BinaryIO", size: int, chunk: int, show: "Callable[[int], None] | None", mine: _Tally) -> None:
    """Scan FH into MINE, its second half in a forked process. The child
    has no line reader: if it met lines for one (strace, records), which
    must be read in order after the first half's, the parent scans the
    second half again itself."""
    mid = size // 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the second half, on the other core
        code = 0
        try:
            os.close(read_end)
            with open(fh.name, "rb") as own:  # its own offset: fh's is the parent's too
                theirs = _Tally(fmt=format_of(own.readline().rstrip(b"\n")))  # the file's, not its second half's first line
                _scan_range(own, mid, None, theirs, chunk)
            data = theirs.dump()
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    _scan_range(fh, 0, mid, mine, chunk, (lambda pos: show(pos * 2)) if show else None)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    loaded = _Tally.load(data) if status == 0 and data else None
    if loaded is None or loaded.fed or mine.export is not None:
        _scan_range(fh, mid, None, mine, chunk)  # the helper failed, or its half needs the line reader: do it here
        return
    mine.merge(loaded)
