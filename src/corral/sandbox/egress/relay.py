"""The TLS relay and HTTP CONNECT endpoint of the egress supervisor.

A connection the supervisor allowed by name arrives here instead of at its
peer (the supervisor connected the program's socket to this listener and
noted which peer it asked for). The relay reads the ClientHello, checks the
server name (SNI) and the offered application protocols (ALPN) against the
policy, refuses Encrypted ClientHello and anything that is not TLS, then
dials the address it checked and splices bytes both ways (splice(2) through
a pipe: the kernel copies, not Python).

The CONNECT endpoint (``HTTPS_PROXY``/``GRPC_PROXY`` for clients that use
one) takes ``CONNECT host:port``, resolves the name itself, and then does
the same ClientHello check on the tunnel.

What this cannot see (docs/egress.md): the HTTP Host inside TLS, so one
TLS connection to an allowed name can carry requests for other names the
same server answers for (domain fronting, connection reuse).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
from typing import Any, Callable

MAX_HELLO = 1 << 16
EXT_SERVER_NAME, EXT_ALPN = 0, 16
#: encrypted_client_hello (draft-ietf-tls-esni) and its older code points.
EXT_ECH = frozenset({0xFE0D, 0xFE0A, 0xFE09, 0xFFCE})


class HelloError(ValueError):
    pass


#: Names of the extensions a refusal may mention (others by number).
EXT_NAMES = {EXT_SERVER_NAME: "server_name", EXT_ALPN: "application_layer_protocol_negotiation"}


def parse_client_hello(handshake: bytes) -> tuple[str | None, list[str] | None, bool]:
    """(SNI, ALPN list or None, ECH offered) of a ClientHello handshake message.

    Read strictly, because the server reads it too and must not see
    anything else than what was checked: an extension sent twice (RFC 8446
    §4.2 allows one of each type), two host names in server_name (RFC 6066
    §3), an empty protocol name (RFC 7301), or a length that disagrees with
    its contents is refused (``HelloError``) rather than read one way here
    and another way by the server."""
    if len(handshake) < 4 or handshake[0] != 1:
        raise HelloError("not a ClientHello")
    body = handshake[4 : 4 + int.from_bytes(handshake[1:4], "big")]
    pos = 2 + 32
    try:
        pos += 1 + body[pos]
        pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
        pos += 1 + body[pos]
        if pos > len(body):
            raise IndexError("past the end")
        if pos == len(body):
            return None, None, False  # no extensions at all
        end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
        if end != len(body):
            raise HelloError("malformed ClientHello: the extensions' length disagrees with the message")
        pos += 2
        sni: str | None = None
        alpn: list[str] | None = None
        ech = False
        seen: set[int] = set()
        while pos < end:
            if pos + 4 > end:
                raise HelloError("malformed ClientHello: a truncated extension")
            kind, size = struct.unpack("!HH", body[pos : pos + 4])
            data = body[pos + 4 : pos + 4 + size]
            if len(data) != size:
                raise HelloError("malformed ClientHello: an extension runs past the message")
            pos += 4 + size
            if kind in seen:
                raise HelloError(f"the {EXT_NAMES.get(kind, f'type {kind}')} extension twice (RFC 8446 §4.2 allows one of each type)")
            seen.add(kind)
            if kind == EXT_SERVER_NAME:
                sni = _server_name(data)
            elif kind == EXT_ALPN:
                alpn = _protocols(data)
            elif kind in EXT_ECH:
                ech = True
        return sni, alpn, ech
    except (IndexError, UnicodeDecodeError) as exc:
        raise HelloError(f"malformed ClientHello: {exc}") from None


def _vector(data: bytes, width: int) -> bytes:
    """The contents of a vector with a ``width``-byte length that fills ``data``."""
    if len(data) < width or int.from_bytes(data[:width], "big") != len(data) - width:
        raise HelloError("malformed ClientHello: an extension's list length disagrees with its size")
    return data[width:]


def _server_name(data: bytes) -> str | None:
    """The one host name of a server_name extension (RFC 6066 §3)."""
    names, i, host = _vector(data, 2), 0, None
    while i < len(names):
        if i + 3 > len(names):
            raise HelloError("malformed ClientHello: a truncated server name")
        name_type, length = names[i], int.from_bytes(names[i + 1 : i + 3], "big")
        value = names[i + 3 : i + 3 + length]
        if len(value) != length:
            raise HelloError("malformed ClientHello: a server name runs past its list")
        i += 3 + length
        if name_type == 0:
            if host is not None:
                raise HelloError("more than one host name in server_name (RFC 6066 §3 allows one)")
            host = value.decode("ascii")
    return host


def _protocols(data: bytes) -> list[str]:
    """The protocol names of an ALPN extension (RFC 7301 §3.1: none empty)."""
    items, i, out = _vector(data, 2), 0, []
    while i < len(items):
        length = items[i]
        value = items[i + 1 : i + 1 + length]
        if length == 0 or len(value) != length:
            raise HelloError("malformed ClientHello: an empty or truncated ALPN protocol name")
        out.append(value.decode("ascii", "replace"))
        i += 1 + length
    return out


def read_client_hello(conn: socket.socket) -> tuple[bytes, bytes]:
    """(bytes read, the handshake message): the records carrying the first
    handshake message, which may span several records."""
    raw = b""
    handshake = b""

    def need(n: int) -> None:
        nonlocal raw
        while len(raw) < n:
            chunk = conn.recv(max(4096, n - len(raw)))
            if not chunk:
                raise HelloError("the connection closed before a complete ClientHello")
            raw += chunk
            if len(raw) > MAX_HELLO + 5 * 16:
                raise HelloError("ClientHello too large")

    pos = 0
    while True:
        need(pos + 5)
        if raw[pos] != 22:
            raise HelloError("not TLS (the first bytes are not a TLS handshake record)")
        length = int.from_bytes(raw[pos + 3 : pos + 5], "big")
        need(pos + 5 + length)
        handshake += raw[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
            return raw, handshake


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes src -> dst until EOF, with splice(2) through a pipe."""
    r, w = os.pipe()
    try:
        while True:
            try:
                n = os.splice(src.fileno(), w, 1 << 20)
            except OSError:
                break
            if n == 0:
                break
            while n:
                sent = os.splice(r, dst.fileno(), n)
                n -= sent
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _refuse(conn: socket.socket) -> None:
    """Close with a reset, so the client sees an error rather than EOF."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


class Relay:
    """Loopback listeners (IPv4 and IPv6) and one thread per connection."""

    def __init__(self, rules: Any, report: Callable[[str], None]) -> None:
        self.rules = rules
        self.report = report
        self.pending: dict[tuple[str, int], tuple[str, str, int]] = {}  # client (ip, port) -> (kind, peer ip, peer port)
        self.cond = threading.Condition()
        self.listeners: list[socket.socket] = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            try:
                s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                s.bind((host, 0 if not self.listeners else self.listeners[0].getsockname()[1]))
                s.listen(128)
                self.listeners.append(s)
            except OSError:
                continue
        if not self.listeners:
            raise OSError("the relay could not listen on loopback")
        self.port = self.listeners[0].getsockname()[1]

    def addresses(self) -> set[tuple[str, int]]:
        return {(s.getsockname()[0], s.getsockname()[1]) for s in self.listeners}

    def sockaddr_for(self, family: int) -> tuple[Any, ...]:
        """Where the supervisor connects a program socket of ``family``."""
        if family == socket.AF_INET6:
            six = [s for s in self.listeners if s.family == socket.AF_INET6]
            return ("::1", self.port, 0, 0) if six else ("::ffff:127.0.0.1", self.port, 0, 0)
        return ("127.0.0.1", self.port)

    def expect(self, client: tuple[str, int], kind: str, ip: str, port: int) -> None:
        """Note that the program's socket bound at ``client`` is for this peer."""
        with self.cond:
            self.pending[client] = (kind, ip, port)
            self.cond.notify_all()

    def start(self) -> None:
        for s in self.listeners:
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, peer = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def _claim(self, peer: tuple[Any, ...]) -> tuple[str, str, int] | None:
        from .rules import plain

        key = (str(plain(peer[0])), peer[1])
        with self.cond:
            self.cond.wait_for(lambda: key in self.pending, timeout=2.0)
            return self.pending.pop(key, None)

    def _serve(self, conn: socket.socket, peer: tuple[Any, ...]) -> None:
        entry = self._claim(peer)
        if entry is None:
            _refuse(conn)  # not a connection the supervisor made: nobody may use the relay
            return
        kind, ip, port = entry
        conn.settimeout(30)
        try:
            if kind == "proxy":
                ip, port = self._connect_request(conn)
                if not ip:
                    return
            raw, handshake = read_client_hello(conn)
            sni, alpn, ech = parse_client_hello(handshake)
        except (HelloError, OSError, ValueError) as exc:
            self.report(f"TLS to {ip}:{port}: refused: {exc}")
            _refuse(conn)
            return
        why = self.rules.check_hello(ip, port, sni, alpn, ech)
        if why:
            self.report(why)
            _refuse(conn)
            return
        try:
            upstream = socket.create_connection((ip, port), timeout=30)
            upstream.settimeout(None)
            conn.settimeout(None)
            upstream.sendall(raw)
        except OSError as exc:
            self.report(f"TLS to {ip}:{port} for {sni}: cannot connect: {exc.strerror or exc}")
            _refuse(conn)
            return
        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    def _connect_request(self, conn: socket.socket) -> tuple[str, int]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk or len(data) > 8192:
                raise HelloError("incomplete HTTP CONNECT request")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if rest:
            raise HelloError("data sent before the CONNECT reply")
        words = head.split(b"\r\n", 1)[0].decode("ascii", "replace").split()
        if len(words) != 3 or words[0] != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.report(f"proxy: refused {' '.join(words[:2])!r}: only CONNECT (TLS tunnels) is served")
            conn.close()
            return "", 0
        host, _, port_text = words[1].rpartition(":")
        if not port_text.isdigit() or not host:
            raise HelloError(f"CONNECT target {words[1]!r} is not host:port")
        port = int(port_text)
        ip, why = self.rules.check_connect_request(host, port)
        if not ip:
            self.report(why)
            body = (why + "\n").encode()
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            conn.close()
            return "", 0
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return ip, port


def stderr_report(line: str) -> None:
    try:
        os.write(2, f"corral run: egress denied: {line}\n".encode())
    except OSError:
        pass


__all__ = ["Relay", "parse_client_hello", "read_client_hello", "stderr_report", "sys"]
