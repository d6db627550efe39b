"""One IPv4 address, three spellings (corral.addresses): a Deny in one
covers the others, in lowering, the supervisor's decisions, nftables and
systemd. The attack under corral run is tests/adversarial/test_egress_mapped.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ir_of

from corral.addresses import canonical, deny_spellings, in_network, reached
from corral.compile import compile_ir
from corral.sandbox.egress.rules import Resolver, Rules

MAPPED = """
Name = "mapped"
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:[::ffff:192.0.2.1]:443", "tcp:10.9.9.9:443", "tcp:api.example.com:443"]
Deny = ["tcp:[::ffff:10.0.0.0/104]:*", "tcp:203.0.113.7:*"]
"""


def test_the_mapped_spelling_is_read_as_the_ipv4_it_is() -> None:
    assert canonical("::ffff:10.0.0.0/104") == "10.0.0.0/8"
    assert canonical("::ffff:192.0.2.1") == "192.0.2.1"
    assert canonical("::ffff:0:0/95") == "::ffff:0:0/95"  # wider than the mapped range: stays IPv6
    assert canonical("2001:db8::1") == "2001:db8::1"
    ir = ir_of(MAPPED)
    # the mapped deny covers the plain allow inside it (dropped when lowering), the mapped allow is IPv4
    assert [(p.address, p.port) for p in ir.ports] == [("192.0.2.1", 443)]
    assert {d.address for d in ir.peer_denies} == {"10.0.0.0/8", "203.0.113.7"}


def test_nat64_of_a_denied_ipv4_is_denied() -> None:
    assert deny_spellings("10.0.0.0/8") == ["10.0.0.0/8", "64:ff9b::a00:0/104"]
    assert deny_spellings("203.0.113.7") == ["203.0.113.7", "64:ff9b::cb00:7107"]
    assert deny_spellings("2001:db8::/32") == ["2001:db8::/32"]
    from corral.addresses import canonical_network

    assert in_network(reached("64:ff9b::10.1.2.3"), canonical_network("10.0.0.0/8"))
    assert in_network(reached("::ffff:10.1.2.3"), canonical_network("::ffff:10.0.0.0/104"))
    assert not in_network(reached("64:ff9b::11.1.2.3"), canonical_network("10.0.0.0/8"))


def _rules() -> Rules:
    doc = {
        "hosts": [{"host": "api.example.com", "port": 443, "protocol": "tcp", "span": "p:1:1"}],
        "deny": [{"host": "", "address": "::ffff:10.0.0.0/104", "port": 0, "protocol": "tcp", "span": "p:2:1"}],
        "connect": [{"address": "", "port": 443, "protocol": "tcp", "span": "p:3:1"}],
        "alpn": [],
    }
    return Rules(doc, Resolver())


@pytest.mark.parametrize("peer", ["10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::10.1.2.3", "64:ff9b::a01:203"])
def test_the_supervisor_denies_every_spelling(peer: str) -> None:
    """Even a plan written before canonical spellings (the mapped network as is) decides on the reached address."""
    d = _rules().decide("tcp", peer, 443)
    assert d.action == "deny" and "Networking.Deny ::ffff:10.0.0.0/104" in d.reason


def test_a_name_may_not_lead_to_the_nat64_form_of_loopback() -> None:
    r = _rules()
    r.connect = []
    r.resolver.cache["api.example.com"] = (1e18, frozenset({reached("64:ff9b::127.0.0.1")}))
    d = r.decide("tcp", "64:ff9b::127.0.0.1", 443)
    assert d.action == "deny" and "the NAT64 form of 127.0.0.1" in d.reason


def test_nftables_and_systemd_drop_every_spelling() -> None:
    out = compile_ir(ir_of(MAPPED), ["systemd", "nftables"], allow_unenforced=True).outputs
    unit = out["systemd"].content.decode()
    assert "IPAddressDeny=10.0.0.0/8" in unit and "IPAddressDeny=64:ff9b::a00:0/104" in unit and "::ffff" not in unit
    nft = out["nftables"].content.decode()
    assert "ip daddr 10.0.0.0/8 meta l4proto tcp counter reject" in nft
    assert "ip6 daddr 64:ff9b::a00:0/104 meta l4proto tcp counter reject" in nft
    assert "ip daddr 192.0.2.1 tcp dport 443 accept" in nft


NFT = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)


@pytest.mark.skipif(NFT is None, reason="nftables is not installed (dev.sh installs it)")
def test_the_nat64_rules_pass_nft_check(tmp_path: Path) -> None:
    path = tmp_path / "mapped.nft"
    path.write_bytes(compile_ir(ir_of(MAPPED), ["nftables"], allow_unenforced=True).outputs["nftables"].content)
    proc = subprocess.run([NFT, "-c", "-f", str(path)], capture_output=True, text=True)  # type: ignore[list-item]
    assert proc.returncode == 0, proc.stderr
