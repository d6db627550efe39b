"""Plain HTTP to a named host (``http:api.example.com:80``): every request checked.

TLS shows its server name once, in the ClientHello; plain HTTP names its
host in every request, and one connection carries many (keep-alive,
pipelining). So the relay reads the client's side of the connection request
by request — the head, then exactly the body its framing says — and checks
each request's ``Host`` (and an absolute-form target's authority) against
the ``http:`` names, on the address the supervisor checked. The server's
side is spliced unread.

Read strictly, as the server must not read anything other than what was
checked (request smuggling): CRLF line ends only, no folded or repeated
``Host``, no ``Transfer-Encoding`` other than ``chunked``, not both it and
``Content-Length``, no protocol switch (``Upgrade``, ``CONNECT``, HTTP/2's
``PRI``: after one, the stream is no longer HTTP/1 requests the relay can
read).
"""

from __future__ import annotations

import re
import socket
from typing import Callable

MAX_HEAD = 16384
MAX_CHUNK_LINE = 1024
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"(?P<method>[!#$%&'*+\-.^_`|~0-9A-Za-z]+) (?P<target>[\x21-\x7e]+) HTTP/1\.[01]")
_HOST = re.compile(r"(?P<name>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


class RequestError(ValueError):
    """Why a request is refused (in words for the report)."""


class Reader:
    """The client's bytes, read as far as the relay has looked at them."""

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self.sock = sock
        self.buf = pending

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def line(self, limit: int) -> bytes:
        """One CRLF-terminated line (CRLF included)."""
        while b"\r\n" not in self.buf[:limit]:
            if len(self.buf) >= limit:
                raise RequestError("a line longer than the relay reads")
            if not self._more():
                raise RequestError("the connection closed inside a request")
        end = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def head(self) -> bytes | None:
        """The next request head (up to and including the empty line), or None at a clean end."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise RequestError(f"a request head longer than {MAX_HEAD} bytes")
            if not self._more():
                if self.buf:
                    raise RequestError("the connection closed inside a request head")
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def crlf(self) -> None:
        """The CR LF that ends a chunk's data."""
        while len(self.buf) < 2:
            if not self._more():
                raise RequestError("the connection closed inside a chunk")
        if self.buf[:2] != b"\r\n":
            raise RequestError("a chunk longer than its size")
        self.buf = self.buf[2:]

    def exactly(self, n: int, out: socket.socket) -> None:
        """Pass ``n`` body bytes on to ``out``."""
        while n:
            if not self.buf and not self._more():
                raise RequestError("the connection closed inside a request body")
            part, self.buf = self.buf[:n], self.buf[n:]
            out.sendall(part)
            n -= len(part)


def parse_head(head: bytes) -> tuple[str, str, dict[str, list[str]]]:
    """(method, target, headers by lower-case name) of a request head, read strictly."""
    lines = head[:-4].split(b"\r\n")
    if any(b"\n" in x or b"\r" in x for x in lines):
        raise RequestError("a bare CR or LF in the request head")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        raise RequestError(f"not an HTTP/1 request line: {lines[0][:80]!r}")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise RequestError("a folded header line (obsolete line folding)")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise RequestError(f"a malformed header line: {line[:80]!r}")
        headers.setdefault(name.decode("ascii").lower(), []).append(value.strip(b" \t").decode("latin-1"))
    return m.group("method").decode("ascii"), m.group("target").decode("ascii"), headers


def request_host(method: str, target: str, headers: dict[str, list[str]], port: int) -> str:
    """The one host a request names (its Host, which an absolute-form
    target must agree with), or ``RequestError``."""
    if method in ("CONNECT", "PRI"):
        raise RequestError(f"{method} would switch the connection to a stream the relay cannot read")
    if "upgrade" in headers or "http2-settings" in headers:
        raise RequestError("Upgrade would switch the connection to a protocol the relay cannot read")
    hosts = headers.get("host", [])
    if len(hosts) != 1:
        raise RequestError("no Host header" if not hosts else "more than one Host header")
    m = _HOST.fullmatch(hosts[0])
    if m is None:
        raise RequestError(f"Host {hosts[0][:80]!r} is not host[:port]")
    if m.group("port") and int(m.group("port")) != port:
        raise RequestError(f"Host {hosts[0]} names port {m.group('port')}, the connection goes to {port}")
    if not target.startswith("/") and target != "*":
        scheme, sep, rest = target.partition("://")
        authority = rest.split("/", 1)[0].split("?", 1)[0]
        if not sep or scheme.lower() != "http" or "@" in authority or authority.lower() != hosts[0].lower():
            raise RequestError(f"the request target {target[:80]!r} names another authority than Host {hosts[0]}")
    return m.group("name").lower().rstrip(".")


def body_length(headers: dict[str, list[str]]) -> int | None:
    """The body's length from Content-Length, None for chunked, 0 for none."""
    te = headers.get("transfer-encoding")
    cl = headers.get("content-length")
    if te is not None:
        if cl is not None:
            raise RequestError("both Transfer-Encoding and Content-Length (request smuggling)")
        if len(te) != 1 or te[0].lower() != "chunked":
            raise RequestError(f"Transfer-Encoding {', '.join(te)[:80]} (only chunked is read)")
        return None
    if cl is None:
        return 0
    values = {v.strip() for item in cl for v in item.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise RequestError(f"Content-Length {', '.join(cl)[:80]} is not one length")
    return int(next(iter(values)))


def forward_chunked(reader: Reader, out: socket.socket) -> None:
    """Pass a chunked body on, chunk by chunk, to its last chunk and trailers."""
    while True:
        line = reader.line(MAX_CHUNK_LINE)
        size_text = line[:-2].split(b";", 1)[0].strip(b" \t")
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text) or len(size_text) > 15:
            raise RequestError("a malformed chunk size")
        out.sendall(line)
        size = int(size_text, 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = reader.line(MAX_HEAD)
                if trailer[:1] in (b" ", b"\t"):
                    raise RequestError("a folded trailer line")
                out.sendall(trailer)
                if trailer == b"\r\n":
                    return
        reader.exactly(size, out)
        reader.crlf()
        out.sendall(b"\r\n")


def first_request(reader: Reader, port: int, check: Callable[[str], str], where: str) -> str:
    """Check the first request before anything is dialled ("" if it may go;
    it stays in ``reader`` for ``relay_requests``)."""
    try:
        head = reader.head()
        if head is None:
            return f"{where}: refused: the connection closed before a request"
        reader.buf = head + reader.buf
        method, target, headers = parse_head(head)
        body_length(headers)
        return check(request_host(method, target, headers, port))
    except RequestError as exc:
        return f"{where}: refused: {exc}"


def relay_requests(reader: Reader, upstream: socket.socket, port: int, check: Callable[[str], str], where: str) -> str:
    """Pass requests on while each names an allowed host (``check(host)`` is
    "" for one); "" at the client's end, else why the connection was cut."""
    while True:
        try:
            head = reader.head()
            if head is None:
                return ""
            method, target, headers = parse_head(head)
            host = request_host(method, target, headers, port)
            why = check(host)
            if why:
                return why
            length = body_length(headers)
            upstream.sendall(head)
            if length is None:
                forward_chunked(reader, upstream)
            else:
                reader.exactly(length, upstream)
        except RequestError as exc:
            return f"{where}: refused: {exc}"
