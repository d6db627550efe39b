"""egress backend: the rules of ``corral run``'s egress supervisor.

Host names, denied peers and TLS protocols are what no kernel filter can
see: seccomp cannot read the address behind connect's pointer, Landlock
knows ports, AppArmor 3 knows families. ``corral run`` enforces them with a
supervisor outside the sandbox (seccomp user notification, connecting on
the program's behalf, a TLS relay that reads the ClientHello): see
``sandbox/egress``. This target writes the document that supervisor reads,
and its coverage says what the supervisor checks and what it cannot.
"""

from __future__ import annotations

import json
from typing import Any

from ..ir import ANY_PORT, IR, AlpnRule, HostRule, PeerDenyRule, PortRule, SocketRule
from . import Coverage, Level, Output

#: What a name rule cannot stop even with the relay (docs/egress.md).
NAME_LIMIT = (
    "the supervisor checks that the address is one the name resolved to and, for TLS, the SNI and ALPN offer; "
    "it cannot see the HTTP Host inside TLS (domain fronting, reused connections to other names the same server answers for)"
)

#: What an ``http:`` name rule checks, and what it cannot (sandbox/egress/http.py).
HTTP_LIMIT = (
    "plain HTTP: the relay reads every request on the connection (keep-alive, pipelining) and checks its Host (and an absolute "
    "target's authority) against the name, on an address the name resolved to; ambiguous framing and protocol switches (Upgrade, "
    "CONNECT) are refused; a server that routes by something else (X-Forwarded-Host, a path prefix) can still be asked for other "
    "sites it serves, and anything on the path can read and change the traffic"
)

#: What becomes of unix sockets when the supervisor answers their calls (sandbox/egress/supervisor.py).
UNIX_UNDER_SUPERVISOR = (
    "socketpairs and inherited sockets work, files pass with SCM_RIGHTS; connect and sends with an address are refused "
    "(made by the supervisor, the path would be resolved outside the program's Landlock domain; let through after a check, "
    "another thread could swap an unchecked socket onto the descriptor), and so is SCM_CREDENTIALS (checked against the supervisor)"
)

#: What the relay checks of ALPN, by ``Networking.ALPNOnly`` (docs/egress.md).
SERVER_CHOICE = (
    "in TLS 1.2 the relay also checks the server's choice in its ServerHello (none, or another, is refused); "
    "TLS 1.3 encrypts that choice, so a server that ignores ALPN may answer in its default protocol, and a TLS 1.2 renegotiation is encrypted too"
)
ALPN_ANY = (
    "the relay checks that every ClientHello offers one of these; a client offering others too passes "
    "(curl --http2 offers h2 and http/1.1; ALPNOnly = true refuses that); " + SERVER_CHOICE
)
ALPN_ONLY = "the relay checks that every ClientHello offers these and no other (ALPNOnly); " + SERVER_CHOICE


def document(ir: IR) -> dict[str, Any]:
    """The supervisor's rules, as plain data (the run plan embeds it)."""
    return {
        "hosts": [{"host": h.host, "port": h.port, "protocol": h.protocol, "http": h.plain_http, "span": str(h.span)} for h in ir.hosts],
        "deny": [{"host": d.host, "address": d.address, "port": d.port, "protocol": d.protocol, "span": str(d.span)} for d in ir.peer_denies],
        "alpn": list(ir.alpn[0].protocols) if ir.alpn else [],
        "alpn_only": bool(ir.alpn and ir.alpn[0].only),
        # what corral run says of unix sockets under the supervisor ("" when the policy allows none)
        "unix": UNIX_UNDER_SUPERVISOR if any(s.family == "unix" for s in ir.sockets) else "",
        "connect": [{"address": p.address, "port": p.port, "protocol": p.protocol, "span": str(p.span)} for p in ir.ports if p.direction == "connect"],
    }


def coverage(ir: IR) -> tuple[Coverage, ...]:
    cov: list[Coverage] = []
    for rule in ir.rules():
        if isinstance(rule, HostRule):
            note = HTTP_LIMIT if rule.plain_http else NAME_LIMIT if rule.protocol == "tcp" else "the address is one the name resolved to (UDP has no SNI to check)"
            cov.append(Coverage(rule, Level.APPROX, note))
        elif isinstance(rule, PeerDenyRule):
            exact = not rule.host
            cov.append(Coverage(rule, Level.EXACT if exact else Level.APPROX, "" if exact else "addresses the name resolves to for the supervisor, and TLS SNI"))
        elif isinstance(rule, AlpnRule):
            cov.append(Coverage(rule, Level.EXACT, ALPN_ONLY) if rule.only else Coverage(rule, Level.APPROX, ALPN_ANY))
        elif isinstance(rule, PortRule) and rule.direction == "connect":
            if ir.supervised:
                cov.append(Coverage(rule, Level.EXACT, "every connect goes through the supervisor, address and port"))
            else:
                cov.append(Coverage(rule, Level.NONE, "the supervisor runs only for policies with host names, Deny or ALPN"))
        elif isinstance(rule, SocketRule) and rule.family == "unix" and ir.supervised:
            cov.append(Coverage(rule, Level.NONE, "under the egress supervisor, unix sockets: " + UNIX_UNDER_SUPERVISOR))
        else:
            cov.append(Coverage(rule, Level.NONE, "the egress supervisor sees connections only"))
    return tuple(cov)


def emit(ir: IR) -> Output:
    text = json.dumps(document(ir), indent=2) + "\n"
    return Output(text.encode(), coverage(ir))


__all__ = ["ALPN_ANY", "ALPN_ONLY", "HTTP_LIMIT", "NAME_LIMIT", "UNIX_UNDER_SUPERVISOR", "ANY_PORT", "coverage", "document", "emit"]
