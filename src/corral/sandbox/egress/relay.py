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

from . import http

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


#: The random of a ServerHello that is a HelloRetryRequest (RFC 8446 §4.1.3).
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
EXT_SUPPORTED_VERSIONS = 43
REC_CCS, REC_ALERT, REC_HANDSHAKE, REC_DATA = 20, 21, 22, 23


class Records:
    """One direction of a TLS connection, read a handshake message at a
    time while the handshake is still in the clear. Bytes read are kept
    until ``take`` hands them on, so nothing reaches the other side before
    the relay has read it."""

    def __init__(self, sock: socket.socket, who: str) -> None:
        self.sock, self.who = sock, who
        self.buf = b""
        self.used = 0  # bytes of buf in records already read

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(4096, n - len(self.buf)))
            if not chunk:
                raise HelloError(f"the {self.who} closed before a complete handshake message")
            self.buf += chunk
            if len(self.buf) > MAX_HELLO + 5 * 16 + (1 << 15):
                raise HelloError(f"the {self.who}'s handshake message is too large")

    def handshake(self, *, skip: frozenset[int] = frozenset(), alone: bool = False) -> bytes | None:
        """The next handshake message, from records of type 22 (records of a
        type in ``skip`` before it are passed over); None if an alert comes
        first. ``alone``: the message must end its record — more handshake
        data after a ClientHello would reach the server unread."""
        message = b""
        while True:
            self._need(self.used + 5)
            kind = self.buf[self.used]
            if kind != REC_HANDSHAKE and (message or (kind not in skip and kind != REC_ALERT)):
                # before waiting for a record's length: plain HTTP would never send it
                raise HelloError(f"not TLS (the {self.who} sent {self.buf[self.used : self.used + 5]!r} where a TLS handshake record was due)")
            length = int.from_bytes(self.buf[self.used + 3 : self.used + 5], "big")
            self._need(self.used + 5 + length)
            payload = self.buf[self.used + 5 : self.used + 5 + length]
            self.used += 5 + length
            if not message and kind in skip:
                continue
            if not message and kind == REC_ALERT:
                return None
            message += payload
            if len(message) >= 4:
                size = 4 + int.from_bytes(message[1:4], "big")
                if len(message) >= size:
                    if alone and len(message) > size:
                        raise HelloError(f"more handshake data after the {self.who}'s hello in one record (it would reach the server unread)")
                    return message[:size]

    def first(self) -> int:
        """The first byte the peer sent (22 for TLS)."""
        self._need(1)
        return self.buf[0]

    def take(self) -> bytes:
        """Everything read so far (checked or not yet needed), handed on once."""
        out, self.buf, self.used = self.buf, b"", 0
        return out

    def take_read(self) -> bytes:
        """The records read so far; what follows stays for the next read."""
        out, self.buf, self.used = self.buf[: self.used], self.buf[self.used :], 0
        return out


def parse_server_hello(handshake: bytes) -> tuple[bool, bool, str | None]:
    """(HelloRetryRequest, TLS 1.3, ALPN chosen) of a ServerHello handshake
    message, read as strictly as a ClientHello (one extension of each type)."""
    if len(handshake) < 4 or handshake[0] != 2:
        raise HelloError("the server's first handshake message is not a ServerHello")
    body = handshake[4 : 4 + int.from_bytes(handshake[1:4], "big")]
    try:
        retry = body[2:34] == HRR_RANDOM
        pos = 34
        pos += 1 + body[pos]
        pos += 3  # cipher suite, compression
        if pos > len(body):
            raise IndexError("past the end")
        tls13, chosen, seen = False, None, set()
        end = len(body)
        if pos < end:
            end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
            if end != len(body):
                raise HelloError("malformed ServerHello: the extensions' length disagrees with the message")
            pos += 2
        while pos < end:
            kind, size = struct.unpack("!HH", body[pos : pos + 4])
            data = body[pos + 4 : pos + 4 + size]
            if len(data) != size:
                raise HelloError("malformed ServerHello: an extension runs past the message")
            pos += 4 + size
            if kind in seen:
                raise HelloError(f"the server sent the {EXT_NAMES.get(kind, f'type {kind}')} extension twice")
            seen.add(kind)
            if kind == EXT_SUPPORTED_VERSIONS:
                tls13 = data == b"\x03\x04"
            elif kind == EXT_ALPN:
                names = _protocols(data)
                if len(names) != 1:
                    raise HelloError("malformed ServerHello: ALPN must name one protocol")
                chosen = names[0]
        return retry, tls13 or retry, chosen
    except (IndexError, struct.error) as exc:
        raise HelloError(f"malformed ServerHello: {exc}") from None


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
        client = Records(conn, "client")
        try:
            if kind == "proxy":
                ip, port = self._connect_request(conn)
                if not ip:
                    return
            if client.first() != REC_HANDSHAKE and self.rules.http_port(port):
                self._serve_http(conn, client.take(), ip, port)
                return
            hello = client.handshake(alone=True)
            if hello is None:
                raise HelloError("not TLS (an alert where a ClientHello was due)")
            sni, alpn, ech = parse_client_hello(hello)
        except (HelloError, OSError, ValueError) as exc:
            self.report(f"TLS to {ip}:{port}: refused: {exc}")
            _refuse(conn)
            return
        upstream = self._dial(conn, ip, port, f"TLS to {ip}:{port} for {sni}", self.rules.check_hello(ip, port, sni, alpn, ech))
        if upstream is None:
            return
        try:
            why = self._handshake(client, upstream, ip, port, sni)
        except (HelloError, OSError, ValueError) as exc:
            why = f"TLS to {ip}:{port} for {sni}: refused: {exc}"
        if why:
            self.report(why)
            _refuse(conn)
            _refuse(upstream)
            return
        upstream.settimeout(None)
        conn.settimeout(None)
        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    def _dial(self, conn: socket.socket, ip: str, port: int, where: str, why: str) -> socket.socket | None:
        """The connection to the checked peer, or None (``conn`` reset, the
        reason reported) if the first check said ``why`` or the peer cannot be reached."""
        if not why:
            try:
                return socket.create_connection((ip, port), timeout=30)
            except OSError as exc:
                why = f"{where}: cannot connect: {exc.strerror or exc}"
        self.report(why)
        _refuse(conn)
        return None

    def _serve_http(self, conn: socket.socket, pending: bytes, ip: str, port: int) -> None:
        """Plain HTTP for an ``http:`` name: every request's Host checked (http.py)."""
        where = f"plain HTTP to {ip}:{port}"
        reader = http.Reader(conn, pending)

        def check(host: str) -> str:
            return str(self.rules.check_http_host(ip, port, host))

        try:
            first = http.first_request(reader, port, check, where)
        except OSError as exc:
            first = f"{where}: refused: {exc.strerror or exc}"  # no complete request in time
        upstream = self._dial(conn, ip, port, where, first)
        if upstream is None:
            return
        upstream.settimeout(None)
        conn.settimeout(None)  # the first request came in time; a kept-alive connection may idle
        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        cut = False
        try:
            why = http.relay_requests(reader, upstream, port, check, where)
        except OSError:
            why, cut = "", True  # the client went away: nothing to report
        if why:
            self.report(why)
            cut = True
        try:  # the server answers what it was asked, then ends; the pump ends with it, and only then are the descriptors closed
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        back.join()
        (_refuse if cut else socket.socket.close)(conn)
        upstream.close()

    def _handshake(self, client: Records, upstream: socket.socket, ip: str, port: int, sni: str | None) -> str:
        """Forward the checked ClientHello and read the server's answer up
        to its ServerHello; "" once the rest may be spliced, else why not.

        A HelloRetryRequest makes the client send a second ClientHello, in
        the clear: it is read and checked like the first (and the client's
        records are held until then, so none reaches the server unread). A
        TLS 1.2 ServerHello shows the server's ALPN choice, which must be
        one of ``Networking.ALPN``; TLS 1.3 encrypts it."""
        server = Records(upstream, "server")
        upstream.sendall(client.take_read())
        for attempt in range(2):
            reply = server.handshake(skip=frozenset({REC_CCS}))
            if reply is None:
                break  # an alert: the handshake ends here
            retry, tls13, chosen = parse_server_hello(reply)
            if retry:
                if attempt:
                    return f"TLS to {ip}:{port} for {sni}: a second HelloRetryRequest (RFC 8446 §4.1.4 allows one); refused"
                client.sock.sendall(server.take())
                # the second ClientHello; early data and ChangeCipherSpec before it are passed over (the server skips them)
                hello = client.handshake(skip=frozenset({REC_CCS, REC_DATA}), alone=True)
                if hello is None:
                    break
                why = self.rules.check_hello(ip, port, *parse_client_hello(hello))
                if why:
                    return f"{why} (in the ClientHello after a HelloRetryRequest)"
                upstream.sendall(client.take_read())
                continue
            if not tls13:
                why = self.rules.check_server_choice(ip, port, sni, chosen)
                if why:
                    return why
            break
        client.sock.sendall(server.take())
        upstream.sendall(client.take())
        return ""

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


__all__ = ["Records", "Relay", "parse_client_hello", "parse_server_hello", "stderr_report", "sys"]
