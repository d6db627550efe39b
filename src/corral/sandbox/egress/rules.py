"""The supervisor's decisions, in policy terms, and its resolver.

A connection is allowed when the policy's rules allow its peer:

0. An unspecified destination (0.0.0.0, ::) is this host: the kernel
   connects it over loopback, so it is decided as the loopback it reaches.
1. ``Networking.Deny`` wins: a denied network, or an address a denied
   name resolves to (a denied wildcard is checked on the TLS SNI).
2. A Connect port rule (``tcp:443``, ``tcp:10.0.0.0/8:5432``) allows the
   peer directly, as the policy says (loopback included if it says so).
3. A Connect name rule allows an address that name resolved to *for the
   supervisor* (never the program's answer), except loopback, link-local,
   cloud metadata and this host's own addresses (a DNS answer pointing
   there is rebinding). TCP goes through the TLS relay, which checks SNI
   and ALPN. A wildcard cannot be resolved in advance: any public address
   goes to the relay, where the SNI must match and resolve to it.

The resolver asks the system (getaddrinfo) for the addresses and keeps
them for the records' TTL, which getaddrinfo does not return: ``dnsttl``
asks the DNS resolver for it beside the connect, bounded to 5..300 s;
``TTL_SECONDS`` where DNS does not answer (a name from /etc/hosts). An
address that is not (or no longer) in the set triggers one fresh lookup
(at most one a second per name) before a denial. ``CORRAL_EGRESS_HOSTS``
(test-only, documented in docs/egress.md) names a hosts file the supervisor
reads instead of DNS; its answers may be loopback, because they are what
the test says the names are.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ...addresses import canonical_network, in_network, nat64_embedded, reached
from ...hostnames import host_matches

TTL_SECONDS = 30.0
ANY_PORT = 0
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Where no name may lead unless the policy names the address itself.
_SPECIAL = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "100.100.100.200/32",
        "::/128", "::1/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128",
    )
]  # fmt: skip


#: An address, IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 it is.
plain = reached


def own_addresses() -> set[Address]:
    """This host's addresses (IPv4 LOCAL routes, IPv6 interface addresses)."""
    out: set[Address] = set()
    try:
        with open("/proc/net/fib_trie") as fh:
            previous = ""
            for line in fh:
                if "/32 host LOCAL" in line and previous:
                    out.add(ipaddress.ip_address(previous))
                parts = line.strip().split()
                previous = parts[-1] if parts[:1] == ["|--"] else ""
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                raw = line.split()[0]
                out.add(ipaddress.ip_address(":".join(raw[i : i + 4] for i in range(0, 32, 4))))
    except (OSError, ValueError, IndexError):
        pass
    return out


def special(addr: Address, own: set[Address]) -> str:
    """Why a name may not lead to ``addr`` ("" if it may); the NAT64 form
    of an address (64:ff9b::a.b.c.d) is judged as the IPv4 it reaches."""
    v4 = nat64_embedded(addr)
    if v4 is not None and special(v4, own):
        return f"the NAT64 form of {v4}, {special(v4, own)}"
    if addr in own:
        return "an address of this host"
    for net in _SPECIAL:
        if addr.version == net.version and addr in net:
            if addr.is_loopback:
                return "a loopback address"
            if addr.is_link_local or str(addr) in ("100.100.100.200", "fd00:ec2::254"):
                return "a link-local or cloud metadata address"
            return "not a unicast peer address"
    return ""


class Resolver:
    """Names to addresses, as the supervisor sees them, kept for their
    records' TTL (``dnsttl``: bounded, ``TTL_SECONDS`` where DNS does not say)."""

    def __init__(self, hosts_file: str | None = None) -> None:
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, frozenset[Address]]] = {}  # name -> (expires, addresses)
        self.looked: dict[str, float] = {}  # name -> when it was last looked up
        self.hosts: dict[str, set[Address]] = {}
        self.lookups = 0  # how many were asked: a decision made without any depends on the policy alone
        if hosts_file:
            with open(hosts_file) as fh:
                for line in fh:
                    words = line.split("#", 1)[0].split()
                    if len(words) >= 2:
                        for name in words[1:]:
                            self.hosts.setdefault(name.lower().rstrip("."), set()).add(plain(words[0]))

    def from_hosts_file(self, name: str) -> bool:
        return name in self.hosts

    def lookup(self, name: str, *, fresh: bool = False) -> frozenset[Address]:
        with self.lock:
            self.lookups += 1
        name = name.lower().rstrip(".")
        if name in self.hosts:
            return frozenset(self.hosts[name])
        now = time.monotonic()
        with self.lock:
            hit = self.cache.get(name)
            if hit and not fresh and hit[0] > now:
                return hit[1]
            if hit and fresh and self.looked.get(name, -2.0) + 1.0 > now:
                return hit[1]  # looked up less than a second ago: no storm of lookups
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            found = frozenset(plain(str(i[4][0])) for i in infos)
        except (OSError, UnicodeError, ValueError):
            found = frozenset()
        with self.lock:
            self.cache[name], self.looked[name] = (now + TTL_SECONDS, found), now
        if found:  # the TTL costs a DNS query: asked beside the connect, never in its way
            threading.Thread(target=self._keep_for_ttl, args=(name, now, found), daemon=True).start()
        return found

    def _keep_for_ttl(self, name: str, when: float, found: frozenset[Address]) -> None:
        """Keep the answer of ``when`` for its records' TTL (if no newer one replaced it)."""
        from .dnsttl import record_ttl

        ttl = record_ttl(name) or TTL_SECONDS
        with self.lock:
            if self.looked.get(name) == when:
                self.cache[name] = (when + ttl, found)


@dataclass
class Decision:
    """What to do with one connection: ``direct`` (connect as asked),
    ``relay`` (through the TLS relay, for ``names``), ``proxy`` (the
    program connects to the CONNECT endpoint) or ``deny`` with ``reason``."""

    action: str
    reason: str = ""
    names: list[str] = field(default_factory=list)


class Rules:
    """The egress part of a run plan, with the resolver that serves it."""

    def __init__(self, doc: dict[str, Any], resolver: Resolver, relay_addresses: set[tuple[str, int]] | None = None) -> None:
        self.hosts: list[dict[str, Any]] = doc["hosts"]
        self.denies: list[dict[str, Any]] = doc["deny"]
        self.connect: list[dict[str, Any]] = doc["connect"]
        self.alpn: list[str] = doc["alpn"]
        self.alpn_only: bool = bool(doc.get("alpn_only", False))
        self.resolver = resolver
        self.relay = relay_addresses or set()
        self.own = own_addresses()
        self.networks = {r["address"]: canonical_network(r["address"]) for r in (*self.connect, *self.denies) if r["address"]}

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def _port_ok(rule: dict[str, Any], proto: str, port: int) -> bool:
        return bool(rule["protocol"] == proto and rule["port"] in (port, ANY_PORT))

    def _in(self, network: str, addr: Address) -> bool:
        """Whether an allow rule's network holds ``addr``, as written (an
        allowed IPv4 network does not widen to its NAT64 form)."""
        net = self.networks[network]
        return addr.version == net.version and addr in net

    def allowed_names(self, proto: str, port: int, *, http: bool | None = None) -> str:
        """The names allowed on this port (``http``: only those for plain HTTP, or only those for TLS)."""
        names = [h["host"] for h in self.hosts if self._port_ok(h, proto, port) and (http is None or bool(h.get("http")) == http)]
        return ", ".join(dict.fromkeys(names)) if names else "none on this port"

    def _tls_hosts(self, port: int) -> list[str]:
        return [h["host"] for h in self.hosts if self._port_ok(h, "tcp", port) and not h.get("http")]

    def http_port(self, port: int) -> bool:
        """Whether plain HTTP to a name may go to this port (an ``http:`` rule)."""
        return any(h.get("http") and self._port_ok(h, "tcp", port) for h in self.hosts)

    def check_http_host(self, ip: str, port: int, host: str) -> str:
        """Why the relay refuses a plain HTTP request for ``host`` on a
        connection to ``ip``:``port`` ("" if it does not)."""
        where = f"plain HTTP to {ip}:{port}"
        why = self.name_denied("tcp", host, port)
        if why:
            return f"{where} for {host}: denied by {why}"
        if not any(host_matches(h["host"], host) for h in self.hosts if h.get("http") and self._port_ok(h, "tcp", port)):
            return f"{where}: Host {host} is not an allowed name for plain HTTP; allowed: {self.allowed_names('tcp', port, http=True)}"
        if not self.address_of(host, plain(ip)):
            return f"{where}: {ip} is not an address of {host} (Host)"
        return ""

    def denied(self, proto: str, addr: Address, port: int) -> str:
        """The Deny rule that covers the peer, or ""."""
        for d in self.denies:
            if not self._port_ok(d, proto, port):
                continue
            if d["address"] and in_network(addr, self.networks[d["address"]]):  # the NAT64 form of a denied IPv4 too
                return f"Networking.Deny {d['address']} [{d['span']}]"
            if d["host"] and not d["host"].startswith("*.") and addr in self.resolver.lookup(d["host"]):
                return f"Networking.Deny {d['host']} (it resolves to {addr}) [{d['span']}]"
        return ""

    def name_denied(self, proto: str, name: str, port: int) -> str:
        for d in self.denies:
            if d["host"] and self._port_ok(d, proto, port) and host_matches(d["host"], name):
                return f"Networking.Deny {d['host']} [{d['span']}]"
        return ""

    def address_of(self, name: str, addr: Address) -> bool:
        """Whether ``addr`` is an address ``name`` resolves to for us (one fresh lookup before no)."""
        if addr in self.resolver.lookup(name):
            return True
        return addr in self.resolver.lookup(name, fresh=True)

    # -- connect ----------------------------------------------------------
    def decide(self, proto: str, ip: str, port: int) -> Decision:
        addr = plain(ip)
        where = f"{proto} connect to {ip}:{port}"
        if addr.is_unspecified:
            return self._unspecified(proto, ip, port)
        if proto == "tcp" and (str(addr), port) in self.relay:
            return Decision("proxy")
        why = self.denied(proto, addr, port)
        if why:
            return Decision("deny", f"{where}: denied by {why}")
        for rule in self.connect:
            if self._port_ok(rule, proto, port) and (not rule["address"] or self._in(rule["address"], addr)):
                return Decision("direct")
        candidates = [h for h in self.hosts if self._port_ok(h, proto, port)]
        if not candidates:
            return Decision("deny", f"{where}: port {port} is not allowed for {proto} by Networking.Connect")
        odd = special(addr, self.own)
        if odd and not any(self.resolver.from_hosts_file(h["host"]) for h in candidates):
            # decided without DNS: no answer could make it allowed (and an offline resolver may take seconds)
            return Decision("deny", f"{where}: {ip} is {odd}; a name may not lead there unless the policy names the address itself")
        exact = [h["host"] for h in candidates if not h["host"].startswith("*.")]
        names = [n for n in exact if self.address_of(n, addr)]
        wild = [h["host"] for h in candidates if h["host"].startswith("*.")] if proto == "tcp" else []
        if not names and not wild:
            return Decision("deny", f"{where}: not an address of an allowed name; allowed: {self.allowed_names(proto, port)}")
        if odd and not any(self.resolver.from_hosts_file(n) for n in names):
            return Decision("deny", f"{where}: {ip} is {odd}; a name may not lead there unless the policy names the address itself")
        return Decision("direct" if proto == "udp" else "relay", names=names + wild)

    def _unspecified(self, proto: str, ip: str, port: int) -> Decision:
        """The kernel sends to an unspecified destination (0.0.0.0, ::) over
        loopback: 127.0.0.1, or ::1 — or 127.0.0.1 again for an IPv6 socket
        bound to a v4-mapped address. Decided as each loopback it may reach:
        refused if either is, else as its own family's loopback."""
        for alias in ("127.0.0.1", "::1"):
            d = self.decide(proto, alias, port)
            if d.action == "deny":
                return Decision("deny", f"{proto} connect to {ip}:{port}: {ip} means this host (loopback {alias}): {d.reason}")
        return self.decide(proto, "::1" if ":" in ip and plain(ip).version == 6 else "127.0.0.1", port)

    # -- TLS -------------------------------------------------------------
    def check_hello(self, ip: str, port: int, sni: str | None, alpn: list[str] | None, ech: bool) -> str:
        """Why the relay refuses this ClientHello to ``ip``:``port`` ("" if it does not)."""
        where = f"TLS to {ip}:{port}"
        if ech:
            return f"{where}: Encrypted ClientHello hides the server name; refused"
        if not sni:
            return f"{where}: no server name (SNI); a connection allowed by name must name its host; allowed: {self.allowed_names('tcp', port)}"
        sni = sni.lower().rstrip(".")
        why = self.name_denied("tcp", sni, port)
        if why:
            return f"{where} for {sni}: denied by {why}"
        if not any(host_matches(h, sni) for h in self._tls_hosts(port)):
            return f"{where}: SNI {sni} is not an allowed name; allowed: {self.allowed_names('tcp', port, http=False)}"
        if not self.address_of(sni, plain(ip)):
            return f"{where}: {ip} is not an address of {sni} (SNI)"
        if self.alpn:
            offered = alpn or []
            said = f"offers ALPN {', '.join(offered)}" if offered else "offers no ALPN"
            if not any(p in self.alpn for p in offered):
                return f"{where} for {sni}: the client {said}; Networking.ALPN requires {' or '.join(self.alpn)}"
            if self.alpn_only and any(p not in self.alpn for p in offered):
                return f"{where} for {sni}: the client {said}; Networking.ALPN with ALPNOnly allows only {', '.join(self.alpn)}"
        return ""

    def check_server_choice(self, ip: str, port: int, sni: str | None, selected: str | None) -> str:
        """Why the relay refuses a TLS 1.2 ServerHello's ALPN choice ("" if it
        does not): with ``ALPN``, the server must have chosen one of them (no
        choice means each side falls back to its default, HTTP/1.1 for most)."""
        if not self.alpn or selected in self.alpn:
            return ""
        chose = f"chose ALPN {selected}" if selected else "chose no ALPN"
        return f"TLS to {ip}:{port} for {sni}: the server {chose} (TLS 1.2 ServerHello); Networking.ALPN requires {' or '.join(self.alpn)}"

    def check_connect_request(self, host: str, port: int) -> tuple[str, str]:
        """For an HTTP CONNECT: (address to dial, "") or ("", why not)."""
        host = host.strip("[]")
        try:
            decision = self.decide("tcp", str(plain(host)), port)
            if decision.action in ("direct", "relay"):
                return str(plain(host)), ""
            return "", decision.reason or f"CONNECT {host}:{port}: not allowed"
        except ValueError:
            pass  # a name
        name = host.lower().rstrip(".")
        why = self.name_denied("tcp", name, port)
        if why:
            return "", f"CONNECT {name}:{port}: denied by {why}"
        if not any(host_matches(h["host"], name) for h in self.hosts if self._port_ok(h, "tcp", port)):
            return "", f"CONNECT {name}:{port}: not an allowed name; allowed: {self.allowed_names('tcp', port)}"
        addresses = sorted(self.resolver.lookup(name), key=lambda a: (a.version, int(a)))
        trusted = self.resolver.from_hosts_file(name)
        for addr in addresses:
            if (trusted or not special(addr, self.own)) and not self.denied("tcp", addr, port):
                return str(addr), ""
        return "", f"CONNECT {name}:{port}: {name} resolves to no address a name may lead to ({', '.join(map(str, addresses)) or 'none'})"
