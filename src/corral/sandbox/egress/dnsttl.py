"""How long the egress supervisor keeps a name's addresses: the records' TTL.

getaddrinfo answers addresses without a TTL. The supervisor takes its
addresses from getaddrinfo (so /etc/hosts, nsswitch and the system's
resolver configuration apply, as for every other program), and asks the
DNS resolver libc uses (res_query, /etc/resolv.conf) for the same name's A
record only to learn how long that answer may be kept. A name that DNS
does not answer for (one from /etc/hosts, an offline resolver) keeps the
supervisor's default (rules.TTL_SECONDS). The TTL is bounded: at least ``MIN_TTL`` (a zero TTL would mean a
lookup for every connect), at most ``MAX_TTL`` (an address trusted longer
than that may have moved to someone else).
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

MIN_TTL, MAX_TTL = 5.0, 300.0
_C_IN, _T_A, _T_AAAA, _T_CNAME = 1, 1, 28, 5



def _load_res_query() -> Any:
    """libc's DNS query function (libresolv's before glibc 2.34 moved it), or None."""
    for lib in ("libresolv.so.2", "libc.so.6"):
        try:
            fn = getattr(ctypes.CDLL(lib, use_errno=True), "res_query", None)
        except OSError:
            continue
        if fn is not None:
            fn.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            fn.restype = ctypes.c_int
            return fn
    return None


_res_query = _load_res_query()


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def answer_ttl(msg: bytes) -> int | None:
    """The smallest TTL of the address (and CNAME) records in a DNS answer, or None."""
    try:
        qd, an = struct.unpack("!HH", msg[4:8])
        pos = 12
        for _ in range(qd):
            pos = _skip_name(msg, pos) + 4
        ttls = []
        for _ in range(an):
            pos = _skip_name(msg, pos)
            kind, klass, ttl, size = struct.unpack("!HHIH", msg[pos : pos + 10])
            pos += 10 + size
            if klass == _C_IN and kind in (_T_A, _T_AAAA, _T_CNAME):
                ttls.append(ttl)
        return min(ttls) if ttls else None
    except (IndexError, struct.error):
        return None


def record_ttl(name: str) -> float | None:
    """How long the supervisor may keep ``name``'s addresses, in seconds
    (bounded to MIN_TTL..MAX_TTL), or None if DNS does not say."""
    if _res_query is None:
        return None
    buf = ctypes.create_string_buffer(4096)
    try:
        n = _res_query(name.encode("idna"), _C_IN, _T_A, buf, len(buf))
    except UnicodeError:
        return None
    ttl = answer_ttl(buf.raw[: min(n, len(buf))]) if n > 12 else None
    return None if ttl is None else min(MAX_TTL, max(MIN_TTL, float(ttl)))
