"""The relay must read a ClientHello exactly as the server will.

An extension sent twice (RFC 8446 §4.2: "There MUST NOT be more than one
extension of the same type") or two host names in one server_name list
(RFC 6066 §3: at most one name of a type) let the relay and the server read
different things: the relay checked the last server_name or ALPN
extension, a server may take the first — other.test behind api.test's
check, or http/1.1 behind the h2 check. Each ambiguity is refused before
anything reaches the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file


#: A HelloRetryRequest (RFC 8446 §4.1.4) in a record: a ServerHello with
#: the special random, TLS 1.3 in supported_versions, key_share x25519.
_HRR_BODY = bytes.fromhex("0303" "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c" "00" "1301" "00" "000c" "002b00020304" "00330002001d")
HRR = b"\x16\x03\x03" + (len(_HRR_BODY) + 4).to_bytes(2, "big") + b"\x02" + len(_HRR_BODY).to_bytes(3, "big") + _HRR_BODY


class Server:
    """A loopback peer that keeps what reaches it, and answers: with a
    TLS alert, or (``retry``) first with a HelloRetryRequest."""

    def __init__(self, retry: bool = False) -> None:
        self.retry = retry
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    data = conn.recv(65536)
                    self.received.append(data)
                    if self.retry:
                        conn.sendall(HRR)
                        while more := conn.recv(65536):
                            self.received.append(more)
                            if b"\x16\x03" in more:  # the second ClientHello
                                break
                    conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # a TLS alert: an answer
                except OSError:
                    pass


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("extensions", "reason"),
    [
        (["sni=other.test", "sni=api.test", "alpn=h2"], "server_name extension twice"),
        (["sni=api.test", "alpn=http/1.1", "alpn=h2"], "application_layer_protocol_negotiation extension twice"),
        (["sni=other.test,api.test", "alpn=h2"], "more than one host name"),
        (["sni=api.test", "alpn=h2", "sni=api.test"], "server_name extension twice"),
    ],
)
def test_an_ambiguous_client_hello_is_refused(arena: Path, probes: dict[str, Path], user: str, extensions: list[str], reason: str) -> None:
    server = Server()
    try:
        result = _hello(arena, probes, user, server, extensions)
        assert server.received == [], f"the server got a ClientHello the relay read otherwise: {result.stdout}{result.stderr}"
        assert result.stdout.split()[-1:] == ["errno=ECONNRESET"], result.stdout + result.stderr
        assert reason in result.stderr, result.stderr
    finally:
        server.sock.close()


@pytest.mark.parametrize("user", USERS)
def test_a_plain_client_hello_reaches_the_server(arena: Path, probes: dict[str, Path], user: str) -> None:
    """The same probe and server with one of each: it gets through (so the refusals above are the relay's)."""
    server = Server()
    try:
        result = _hello(arena, probes, user, server, ["sni=api.test", "alpn=h2"])
        assert result.stdout.split()[-1:] == ["ok"], result.stdout + result.stderr
        assert len(server.received) == 1 and b"api.test" in server.received[0]
    finally:
        server.sock.close()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (["sni=api.test", "alpn=http/1.1"], "offers ALPN http/1.1; Networking.ALPN requires h2 (in the ClientHello after a HelloRetryRequest)"),
        (["sni=other.test", "alpn=h2"], "SNI other.test is not an allowed name; allowed: api.test (in the ClientHello after a HelloRetryRequest)"),
    ],
)
def test_the_client_hello_after_a_hello_retry_request_is_checked_too(arena: Path, probes: dict[str, Path], user: str, second: list[str], reason: str) -> None:
    """TLS 1.3: a server that wants another key share answers the first
    ClientHello with a HelloRetryRequest, and the client sends a second
    ClientHello, still in the clear. The relay checked the first only and
    spliced the rest: the second could name another server or protocol."""
    server = Server(retry=True)
    try:
        result = _hello(arena, probes, user, server, ["sni=api.test", "alpn=h2", "then", *second])
        later = b"".join(server.received[1:])
        assert second[0][4:].encode() not in later and second[1][5:].encode() not in later, f"the second ClientHello reached the server unchecked: {result.stdout}{result.stderr}"
        assert result.stdout.split()[-1:] == ["errno=ECONNRESET"], result.stdout + result.stderr
        assert reason in result.stderr, result.stderr
    finally:
        server.sock.close()


def _hello(arena: Path, probes: dict[str, Path], user: str, server: Server, extensions: list[str]) -> subprocess.CompletedProcess[str]:
    text = (
        'Name = "hello"\nExtends = ["base"]\n'
        f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:api.test:{server.port}"]\nALPN = ["h2"]\n'
        f'[Filesystem]\nExec = ["{probes["hello_probe"]}"]\n'
    )
    policy = policy_file(arena, text, "hello.toml")
    hosts = policy_file(arena, "127.0.0.1 api.test\n127.0.0.1 other.test\n", "hosts")
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", str(probes["hello_probe"]), "127.0.0.1", str(server.port), *extensions]
    return subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
