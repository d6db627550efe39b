"""ALPN "HTTP/2 only", with real clients and servers on loopback.

``ALPN = ["h2"]`` alone means: every ClientHello offers h2 (curl --http2
offers h2 *and* http/1.1, and passes). ``ALPNOnly = true`` means it offers
nothing else. In TLS 1.2 the relay also reads the server's choice in its
ServerHello and refuses one outside ALPN (or none: both sides would fall
back to HTTP/1.1); TLS 1.3 encrypts that choice — the last test shows what
that leaves (a server that ignores ALPN: none is negotiated).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import USERS, policy_file
from .test_egress import API, CURL, Servers, _free_port, _wait_listening, servers  # noqa: F401 - the fixture

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def _policy(servers: Servers, port: int, only: bool, name: str) -> Path:
    text = servers.policy(name=name).read_text().replace(f"tcp:api.test:{servers.port}", f"tcp:api.test:{port}")
    extra = 'SocketOptions = ["tcp_nodelay"]\n' + ("ALPNOnly = true\n" if only else "")  # openssl s_client sets TCP_NODELAY
    text = text.replace('ALPN = ["h2"]\n', 'ALPN = ["h2"]\n' + extra)
    return policy_file(servers.root, text.replace(f'Exec = ["{CURL}"', f'Exec = ["{CURL}", "{OPENSSL}"'), f"{name}.toml")


def _curl(servers: Servers, policy: Path, port: int, *args: str, user: str) -> subprocess.CompletedProcess[str]:
    url = f"https://api.test:{port}/index.html"
    return servers.run(policy, CURL, "-sS", "--max-time", "20", "--cacert", str(servers.root / "ca.pem"), "-w", " http=%{http_version}", "--resolve", f"api.test:{port}:{API}", *args, url, user=user)


def _s_client(servers: Servers, policy: Path, port: int, alpn: str, user: str) -> subprocess.CompletedProcess[str]:
    """openssl s_client offering exactly ``alpn`` (curl always adds http/1.1)."""
    cmd = [OPENSSL, "s_client", "-connect", f"{API}:{port}", "-servername", "api.test", "-alpn", alpn, "-CAfile", str(servers.root / "ca.pem"), "-verify_return_error"]
    return servers.run(policy, *cmd, user=user)


@pytest.mark.parametrize("user", USERS)
def test_alpn_only_refuses_an_offer_of_h2_among_others(servers: Servers, user: str) -> None:
    strict = _policy(servers, servers.port, True, "alpn-only")
    both = _curl(servers, strict, servers.port, "--http2", user=user)
    assert both.returncode != 0 and "hello" not in both.stdout
    assert "offers ALPN h2, http/1.1; Networking.ALPN with ALPNOnly allows only h2" in both.stderr, both.stderr
    mixed = _s_client(servers, strict, servers.port, "h2,http/1.1", user=user)
    assert "ALPNOnly allows only h2" in mixed.stderr, mixed.stderr
    only = _s_client(servers, strict, servers.port, "h2", user=user)
    assert "ALPN protocol: h2" in only.stdout and "Verify return code: 0 (ok)" in only.stdout and "egress denied" not in only.stderr, only.stdout + only.stderr
    # without ALPNOnly the mixed offer passes, as documented
    loose = _curl(servers, _policy(servers, servers.port, False, "alpn-any"), servers.port, "--http2", user=user)
    assert loose.returncode == 0 and loose.stdout == "hello\n http=2", loose.stderr


@pytest.fixture(scope="module")
def tls12(servers: Servers) -> Iterator[dict[str, int]]:
    """openssl s_server on api.test's address: TLS 1.2 without ALPN, TLS 1.2
    choosing http/1.1, and TLS 1.3 without ALPN (each answers HTTP/1.0 -www)."""
    ports, procs = {}, []
    for what, extra in (("tls12-none", ["-tls1_2"]), ("tls12-http1", ["-tls1_2", "-alpn", "http/1.1"]), ("tls13-none", ["-tls1_3"])):
        port = _free_port()
        cmd = [OPENSSL, "s_server", "-quiet", "-accept", f"{API}:{port}", "-cert", str(servers.root / "api.crt"), "-key", str(servers.root / "api.key"), "-www", *extra]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
        ports[what] = port
    try:
        for port in ports.values():
            _wait_listening(API, port)
        yield ports
    finally:
        for p in procs:
            p.terminate()
            p.wait()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("server", "reason"), [("tls12-none", "the server chose no ALPN (TLS 1.2 ServerHello)"), ("tls12-http1", "the server chose ALPN http/1.1 (TLS 1.2 ServerHello)")])
def test_a_tls12_server_choice_outside_alpn_is_refused(servers: Servers, tls12: dict[str, int], user: str, server: str, reason: str) -> None:
    port = tls12[server]
    proc = _curl(servers, _policy(servers, port, False, f"alpn-{server}"), port, "--http2", user=user)
    assert proc.returncode != 0 and "s_server" not in proc.stdout
    assert reason + "; Networking.ALPN requires h2" in proc.stderr, proc.stderr


def test_what_tls13_leaves_a_server_that_ignores_alpn_completes_without_it(servers: Servers, tls12: dict[str, int]) -> None:
    """The limit coverage states: TLS 1.3 encrypts the server's choice. With
    a server that ignores ALPN the handshake completes with none negotiated
    (both sides then speak their default, HTTP/1.1 for most) although the
    policy says h2 only — with ALPNOnly too (the offer was h2 alone)."""
    port = tls12["tls13-none"]
    proc = _s_client(servers, _policy(servers, port, True, "alpn-tls13"), port, "h2", user="root")
    assert "No ALPN negotiated" in proc.stdout and "TLSv1.3" in proc.stdout and "egress denied" not in proc.stderr, proc.stdout + proc.stderr
