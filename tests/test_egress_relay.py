"""The relay's ClientHello reading and the supervisor's decisions, on real
handshakes (Python's ssl module writes the ClientHello) and hand-built ones."""

from __future__ import annotations

import ssl
import struct

from corral.sandbox.egress.relay import parse_client_hello
from corral.sandbox.egress.rules import Resolver, Rules


def client_hello(server_name: str | None, alpn: list[str] | None) -> bytes:
    """The handshake message a real TLS client (OpenSSL) sends first."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    record = outgoing.read()
    assert record[0] == 22
    return record[5 : 5 + int.from_bytes(record[3:5], "big")]


def with_extension(handshake: bytes, kind: int, data: bytes) -> bytes:
    """The ClientHello with one more extension appended (lengths fixed up)."""
    body = handshake[4:]
    pos = 2 + 32
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 1 + body[pos]
    total = int.from_bytes(body[pos : pos + 2], "big")
    ext = struct.pack("!HH", kind, len(data)) + data
    body = body[:pos] + struct.pack("!H", total + len(ext)) + body[pos + 2 :] + ext
    return b"\x01" + len(body).to_bytes(3, "big") + body


def test_sni_and_alpn_are_read_from_a_real_client_hello() -> None:
    assert parse_client_hello(client_hello("api.example.com", ["h2", "http/1.1"])) == ("api.example.com", ["h2", "http/1.1"], False)
    assert parse_client_hello(client_hello(None, None)) == (None, None, False)


def rules(alpn: list[str]) -> Rules:
    doc = {"hosts": [{"host": "api.example.com", "port": 443, "protocol": "tcp", "span": "p:1:1"}], "deny": [], "connect": [], "alpn": alpn}
    resolver = Resolver()
    resolver.hosts = {"api.example.com": {__import__("ipaddress").ip_address("192.0.2.10")}}
    return Rules(doc, resolver)


def test_encrypted_client_hello_is_refused() -> None:
    hello = with_extension(client_hello("public.example.net", ["h2"]), 0xFE0D, b"\x00" * 32)
    sni, alpn, ech = parse_client_hello(hello)
    assert ech and sni == "public.example.net"
    assert "Encrypted ClientHello" in rules(["h2"]).check_hello("192.0.2.10", 443, sni, alpn, ech)


def test_the_checks_in_policy_terms() -> None:
    r = rules(["h2"])
    assert r.check_hello("192.0.2.10", 443, "api.example.com", ["h2", "http/1.1"], False) == ""
    assert "Networking.ALPN requires h2" in r.check_hello("192.0.2.10", 443, "api.example.com", ["http/1.1"], False)
    assert "offers no ALPN" in r.check_hello("192.0.2.10", 443, "api.example.com", None, False)
    assert "192.0.2.11 is not an address of api.example.com" in r.check_hello("192.0.2.11", 443, "api.example.com", ["h2"], False)
    assert "SNI evil.example.com is not an allowed name; allowed: api.example.com" in r.check_hello("192.0.2.10", 443, "evil.example.com", ["h2"], False)
    assert r.decide("tcp", "192.0.2.10", 443).action == "relay"
    assert r.decide("tcp", "::ffff:192.0.2.10", 443).action == "relay"  # IPv4-mapped is the IPv4 address
    assert "not an address of an allowed name; allowed: api.example.com" in r.decide("tcp", "203.0.113.7", 443).reason
    assert "port 80 is not allowed" in r.decide("tcp", "192.0.2.10", 80).reason
    assert "link-local or cloud metadata" in rules_with_metadata().decide("tcp", "169.254.169.254", 443).reason


def rules_with_metadata() -> Rules:
    """A name whose DNS answer points at the metadata service: rebinding."""
    r = rules([])
    r.resolver.hosts = {}
    r.resolver.cache["api.example.com"] = (1e18, frozenset({__import__("ipaddress").ip_address("169.254.169.254")}))
    return r


def test_any_extension_twice_or_a_length_that_disagrees_is_refused() -> None:
    """RFC 8446 §4.2: one extension of each type. Whatever the type (here
    supported_versions, 43), a second one is refused, as is a ClientHello
    whose lengths do not add up (the server might read it otherwise)."""
    import pytest

    from corral.sandbox.egress.relay import HelloError

    real = client_hello("api.example.com", ["h2"])
    with pytest.raises(HelloError, match="type 43 extension twice"):
        parse_client_hello(with_extension(real, 43, b"\x02\x03\x04"))
    with pytest.raises(HelloError, match="server_name extension twice"):
        parse_client_hello(with_extension(real, 0, b"\x00\x0a\x00\x00\x07abc.com"))
    with pytest.raises(HelloError, match="empty or truncated ALPN"):
        parse_client_hello(with_extension(client_hello("api.example.com", None), 16, b"\x00\x04\x02h2\x00"))
    longer = b"\x01" + (len(real) - 4 + 1).to_bytes(3, "big") + real[4:] + b"\x00"  # a byte after the extensions
    with pytest.raises(HelloError, match="length disagrees"):
        parse_client_hello(longer)
