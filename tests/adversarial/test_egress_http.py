"""Plain HTTP to a named host: ``Connect = ["http:api.test:PORT"]``.

Without an ``http:`` entry plain HTTP to a name is refused (the relay wants
TLS: tests/adversarial/test_egress.py). With one, the relay reads every
request on the connection — keep-alive and pipelining included — and each
must name an allowed host in ``Host`` (and in an absolute-form target), on
an address that name resolves to; framing it cannot read unambiguously
(both Content-Length and Transfer-Encoding, a folded header, two Host
headers) and protocol switches (Upgrade, CONNECT) are refused. The server
below keeps every byte that reached it: a refused request must not be
among them. Real curl for the allowed case; a static probe for the rest.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file

CURL = shutil.which("curl") or "/usr/bin/curl"


class Server:
    """A loopback HTTP/1.1 server that keeps every byte it got and answers
    each request head with a 6-byte body."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            seen = b""
            try:
                while chunk := conn.recv(65536):
                    before = seen.count(b"\r\n\r\n")
                    seen += chunk
                    self.received += chunk
                    for _ in range(seen.count(b"\r\n\r\n") - before):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
            except OSError:
                pass


@pytest.fixture
def server() -> Server:
    s = Server()
    yield s
    s.sock.close()


def _run(arena: Path, probes: dict[str, Path], server: Server, user: str, *cmd: str, connect: str = "http") -> subprocess.CompletedProcess[str]:
    text = (
        'Name = "plain-http"\nExtends = ["base"]\n'
        f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["{connect}:api.test:{server.port}"]\n'
        f'[Filesystem]\nExec = ["{probes["http_probe"]}", "{CURL}"]\n[Runtime]\nFlags = ["exec", "threads"]\n'
    )
    policy = policy_file(arena, text, "plain-http.toml")
    hosts = policy_file(arena, "127.0.0.1 api.test other.test\n", "hosts")
    full = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", *cmd]
    return subprocess.run(full, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})


def _probe(arena: Path, probes: dict[str, Path], server: Server, user: str, *requests: str) -> subprocess.CompletedProcess[str]:
    return _run(arena, probes, server, user, str(probes["http_probe"]), "127.0.0.1", str(server.port), *requests)


GOOD = "GET /a HTTP/1.1|Host: api.test|User-Agent: probe||"


@pytest.mark.parametrize("user", USERS)
def test_curl_speaks_plain_http_to_the_allowed_name(arena: Path, probes: dict[str, Path], server: Server, user: str) -> None:
    proc = _run(arena, probes, server, user, CURL, "-sS", "--max-time", "20", "--resolve", f"api.test:{server.port}:127.0.0.1", f"http://api.test:{server.port}/index.html")
    assert proc.returncode == 0 and proc.stdout == "hello\n", proc.stdout + proc.stderr
    assert f"Host: api.test:{server.port}".encode() in server.received


def test_plain_http_is_refused_without_an_http_entry(arena: Path, probes: dict[str, Path], server: Server) -> None:
    proc = _run(arena, probes, server, "root", str(probes["http_probe"]), "127.0.0.1", str(server.port), GOOD, connect="tcp")
    assert "not TLS" in proc.stderr and server.received == b"", proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_every_request_on_a_kept_alive_connection_is_checked(arena: Path, probes: dict[str, Path], server: Server, user: str) -> None:
    proc = _probe(arena, probes, server, user, GOOD, "GET /b HTTP/1.1|Host: other.test||", GOOD)
    assert b"other.test" not in server.received and server.received.count(b"GET /a") == 1, server.received
    assert "responses=2" not in proc.stdout and "responses=3" not in proc.stdout, proc.stdout + proc.stderr
    assert "plain HTTP to 127.0.0.1" in proc.stderr and "Host other.test is not an allowed name" in proc.stderr, proc.stderr


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("request_text", "reason"),
    [
        ("GET http://other.test/ HTTP/1.1|Host: api.test||", "names another authority than Host"),
        ("GET / HTTP/1.1|Host: api.test|Host: other.test||", "more than one Host header"),
        ("GET / HTTP/1.1|Host: other.test||", "Host other.test is not an allowed name"),
        ("GET / HTTP/1.1|X: a| Host: other.test|Host: api.test||", "folded header line"),
        ("POST / HTTP/1.1|Host: api.test|Content-Length: 40|Transfer-Encoding: chunked||0||GET / HTTP/1.1|Host: other.test||", "both Transfer-Encoding and Content-Length"),
        ("GET / HTTP/1.1|Host: api.test|Connection: Upgrade|Upgrade: h2c|HTTP2-Settings: AAMAAABkAAQAAP__||", "Upgrade would switch"),
        ("CONNECT other.test:443 HTTP/1.1|Host: other.test:443||", "CONNECT would switch"),
        ("PRI * HTTP/2.0||SM||", "not an HTTP/1 request line"),
        ("GET / HTTP/1.1|Host: api.test:1||", "names port 1"),
    ],
)
def test_requests_the_relay_cannot_read_as_the_server_would_are_refused(arena: Path, probes: dict[str, Path], server: Server, user: str, request_text: str, reason: str) -> None:
    proc = _probe(arena, probes, server, user, request_text)
    assert server.received == b"", server.received
    assert reason in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_a_chunked_body_is_passed_whole_and_the_next_request_checked(arena: Path, probes: dict[str, Path], server: Server, user: str) -> None:
    """The body (which here looks like a request for other.test) is data, passed
    on; the request after it is checked."""
    data = "GET / HTTP/1.1|Host: oth|"  # 27 bytes once each | is CR LF
    post = f"POST /up HTTP/1.1|Host: api.test|Transfer-Encoding: chunked||1b|{data}|0||"
    proc = _probe(arena, probes, server, user, post, "GET /next HTTP/1.1|Host: other.test||")
    assert b"POST /up" in server.received and b"GET /next" not in server.received, server.received
    assert "Host other.test is not an allowed name" in proc.stderr, proc.stdout + proc.stderr
