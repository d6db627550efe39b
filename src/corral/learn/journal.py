"""Read journald's machine formats: ``journalctl -o json`` (one object a
line) and ``-o export`` (``FIELD=value`` lines, entries separated by an
empty line, a field holding newlines or other bytes as ``FIELD\\n``, a
64-bit little-endian length, the bytes and ``\\n``).

An entry is an event only if journald's ``_TRANSPORT`` (a trusted field:
journald sets it, a client cannot) is the kernel's or audit's; an entry
that does not say (``-o json --output-fields=MESSAGE``) is judged by its
MESSAGE's shape, as a text format is (``origin.of_message``). Each entry
yields its MESSAGE as bytes (journald keeps what the kernel wrote, which
need not be UTF-8) and who wrote it, or why it is not read.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

from . import origin

#: journal transports only the kernel writes to.
TRUSTED_TRANSPORTS = (b"kernel", b"audit")
#: A journal field name (journald: upper case, digits, underscores).
_FIELD = re.compile(rb"[A-Z0-9_]{1,64}")
#: The fields an entry is judged by.
_KEPT = (b"MESSAGE", b"_TRANSPORT")
#: The largest binary field read; a bigger length is a corrupt export.
MAX_FIELD = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One journal entry's MESSAGE and who wrote it (``origin``), or the
    reason it is not read (``problem``; then ``message`` may be empty)."""

    message: bytes
    origin: str
    problem: str = ""


def _judge(message: bytes, transport: bytes | None) -> Entry:
    if transport is None:
        return Entry(message, origin.of_message(message))
    if transport in TRUSTED_TRANSPORTS:
        if origin.of_message(message) == origin.FORGED:  # another printk that quotes text: not an audit record
            return Entry(message, origin.FORGED, f"a {transport.decode()} entry not in an audit record's shape")
        return Entry(message, origin.PROVEN)
    shown = transport[:20].decode("ascii", "backslashreplace")
    return Entry(message, origin.FORGED, f"logged by a process (_TRANSPORT={shown}), not the kernel")


def from_json(line: bytes) -> Entry:
    """The entry of one ``-o json`` line."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than Python's stack
        return Entry(b"", origin.FORGED, f"not JSON ({type(exc).__name__}: {str(exc)[:60]})")
    if not isinstance(entry, dict):
        return Entry(b"", origin.FORGED, "a JSON value that is not an object")
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journald writes a non-UTF-8 MESSAGE as its bytes
        bad = next((x for x in message if not (isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255)), None)
        if bad is not None or not message:
            return Entry(b"", origin.FORGED, f"MESSAGE is an array holding {json.dumps(bad)[:20]}, not a byte (0-255)" if message else "MESSAGE is an empty array")
        message = bytes(message)
    elif isinstance(message, str):
        message = message.encode("utf-8", "surrogatepass")
    else:
        return Entry(b"", origin.FORGED, "no MESSAGE string or byte array")
    transport = entry.get("_TRANSPORT")
    if transport is not None and not isinstance(transport, str):
        return Entry(message, origin.FORGED, "_TRANSPORT is not a string")
    return _judge(message, transport.encode() if isinstance(transport, str) else None)


class Export:
    """``-o export``, fed one line (without its newline) at a time."""

    def __init__(self) -> None:
        self.fields: dict[bytes, bytes] = {}  # only MESSAGE and _TRANSPORT are kept
        self.binary: bytes | None = None  # the name of the binary field being read
        self.buf: bytes | None = None  # its bytes so far (None: none yet)
        self.broken = ""  # why the entry being read is not readable

    def line(self, raw: bytes) -> Entry | None:
        """Read one line; the entry it completes, if it does."""
        if self.binary is not None:
            self.buf = raw if self.buf is None else self.buf + b"\n" + raw  # the newline was the data's
            if len(self.buf) < 8:
                return None
            (size,) = struct.unpack("<Q", self.buf[:8])
            if size > MAX_FIELD:
                self.broken = f"binary field {self.binary.decode('ascii')} claims {size} bytes (more than {MAX_FIELD})"
                self.binary = None
                return None
            if len(self.buf) - 8 < size:
                return None
            if len(self.buf) - 8 > size:
                self.broken = f"binary field {self.binary.decode('ascii')} is longer than its length says"
            elif self.binary in _KEPT:
                self.fields.setdefault(self.binary, self.buf[8:])
            self.binary = None
            return None
        if not raw:
            return self._end()
        name, eq, value = raw.partition(b"=")
        if eq and _FIELD.fullmatch(name):
            if name in _KEPT:
                self.fields.setdefault(name, value)  # journald writes each field once; a repeat is not a second MESSAGE
        elif not eq and _FIELD.fullmatch(raw):
            self.binary, self.buf = raw, None
        elif not self.broken:
            self.broken = f"not a FIELD=value line: {raw[:40]!r}"
        return None

    def finish(self) -> Entry | None:
        """The last entry, when the export does not end with an empty line."""
        if self.binary is not None:
            self.broken = self.broken or "the export ends inside a binary field"
            self.binary = None
        return self._end() if self.fields or self.broken else None

    def _end(self) -> Entry | None:
        fields, broken = self.fields, self.broken
        self.fields, self.broken = {}, ""
        if broken:
            return Entry(fields.get(b"MESSAGE", b""), origin.FORGED, broken)
        if b"MESSAGE" not in fields:
            return None
        return _judge(fields[b"MESSAGE"], fields.get(b"_TRANSPORT"))
