"""One IPv4 address has three spellings: a.b.c.d, ::ffff:a.b.c.d and 64:ff9b::a.b.c.d.

An AF_INET6 socket connected to the IPv4-mapped ``::ffff:a.b.c.d`` sends
IPv4 packets to a.b.c.d, and a NAT64 gateway (RFC 6052's well-known prefix
64:ff9b::/96) turns ``64:ff9b::a.b.c.d`` into a.b.c.d. A rule written in one
spelling must mean the same peer as the others, or a Deny of one is walked
around through another. So:

- a policy address or network written IPv4-mapped is read as the IPv4 one
  it is (``canonical``), once, when its item is parsed: every backend and the
  egress supervisor then see one form;
- a peer is compared by the IPv4 address it reaches (``reached``: mapped ->
  IPv4; ``nat64_embedded`` for the NAT64 form, which a Deny of the IPv4
  network covers too);
- a denied IPv4 network is also denied in its NAT64 form in packet filters
  (``deny_spellings``).

Other translations (a network-specific NAT64 prefix such as 64:ff9b:1::/48,
6to4, Teredo) depend on the site and are not mapped: docs/egress.md says so.
Shared by the policy parser, the backends and the egress supervisor, which
must not import the policy loader on its start-up path.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def canonical(text: str) -> str:
    """A policy address or network (``::ffff:10.0.0.0/104``, ``10.0.0.1``), the
    IPv4-mapped forms rewritten as the IPv4 they are (``10.0.0.0/8``); any
    other spelling is kept as written."""
    net = ipaddress.ip_network(text, strict=False)
    if net.version != 6 or net.prefixlen < 96 or not net.subnet_of(MAPPED):  # type: ignore[arg-type]
        return text
    v4 = ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
    return str(v4.network_address) if "/" not in text else str(v4)


def canonical_network(text: str) -> Network:
    """``canonical`` as a network object."""
    return ipaddress.ip_network(canonical(text), strict=False)


def reached(ip: str) -> Address:
    """The address a peer written as ``ip`` reaches: IPv4-mapped IPv6 as
    the IPv4 it is (the kernel sends IPv4), a scope (``%eth0``) dropped."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def nat64_embedded(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 gateway reaches for ``addr`` (64:ff9b::/96), or None."""
    if isinstance(addr, ipaddress.IPv6Address) and addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def in_network(addr: Address, net: Network) -> bool:
    """Whether ``addr`` (as ``reached`` gives it) lies in ``net``, the NAT64
    spelling of an IPv4 address counting as that address."""
    if addr.version == net.version and addr in net:
        return True
    v4 = nat64_embedded(addr)
    return v4 is not None and net.version == 4 and v4 in net


def deny_spellings(text: str) -> list[str]:
    """Every network a packet filter must drop for a denied ``text``: the
    canonical form, and for IPv4 its NAT64 form (64:ff9b::/96 + the network)."""
    first = canonical(text)
    net = ipaddress.ip_network(first, strict=False)
    if net.version != 4:
        return [first]
    six = ipaddress.IPv6Network((int(NAT64.network_address) | int(net.network_address), 96 + net.prefixlen))
    return [first, str(six.network_address) if net.prefixlen == 32 and "/" not in first else str(six)]


__all__ = ["MAPPED", "NAT64", "canonical", "canonical_network", "deny_spellings", "in_network", "nat64_embedded", "reached"]
