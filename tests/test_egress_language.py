"""Host names, Deny and ALPN in [Networking]: parsing, lowering, and what
every backend says it enforces of them (names fail closed without a
name-capable target)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ir_of

from corral.backends import BACKENDS, Level
from corral.compile import compile_ir, coverage_of
from corral.errors import PolicyError, UnenforcedError
from corral.ir import ANY_PORT, AlpnRule, HostRule, PeerDenyRule
from corral.lower import host_matches
from corral.policy import load_policy_text

POLICY = """
Name = "eg"
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:API.example.com.:443", "tcp:*.cdn.example.com:443", "tcp:10.1.2.3:5432", "tcp:db.internal.example.com:5432", "tcp:192.0.2.1:443"]
Deny = ["tcp:10.0.0.0/8:*", "tcp:*.internal.example.com:*"]
ALPN = ["h2"]
"""


def test_names_lower_to_host_rules_and_deny_overrides_allow() -> None:
    ir = ir_of(POLICY)
    assert [(h.host, h.port) for h in ir.hosts] == [("*.cdn.example.com", 443), ("api.example.com", 443)]
    # the network deny removed the address inside it; the wildcard deny removed the name below it
    assert [(p.address, p.port) for p in ir.ports] == [("192.0.2.1", 443)]
    assert {(d.address, d.host, d.port) for d in ir.peer_denies} == {("10.0.0.0/8", "", ANY_PORT), ("", "*.internal.example.com", ANY_PORT)}
    assert ir.alpn == (AlpnRule(("h2",)),)
    assert ir.supervised
    assert not ir_of('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:443", "tcp:192.0.2.1:443"]\n').supervised


def test_a_wildcard_is_one_or_more_labels_and_never_the_apex() -> None:
    assert host_matches("*.example.com", "api.example.com")
    assert host_matches("*.example.com", "a.b.example.com")
    assert host_matches("*.example.com", "API.Example.COM.")
    assert not host_matches("*.example.com", "example.com")
    assert not host_matches("*.example.com", "evilexample.com")
    assert not host_matches("api.example.com", "api.example.com.evil.net")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('Connect = ["tcp:exa mple.com:443"]', "invalid port"),
        ('Connect = ["tcp:-bad.example.com:443"]', "label '-bad'"),
        ('Connect = ["tcp:*.com:443"]', "two labels after"),
        ('Connect = ["tcp:a.*.example.com:443"]', "invalid port"),
        ('Connect = ["tcp:example.123:443"]', "last label is a number"),
        ('Connect = ["tcp:ex\\u00e4mple.com:443"]', "invalid port"),
        ('Bind = ["tcp:api.example.com:443"]', "where only ports go"),
        ('Deny = ["tcp:evil..example.com:*"]', "tcp:api.example.com:443"),
        ('ALPN = ["h 2"]', "invalid ALPN"),
    ],
)
def test_bad_names_are_located_errors(entry: str, message: str) -> None:
    text = f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n{entry}\n'
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "bad.toml")
    rendered = info.value.render()
    assert message in rendered, rendered
    assert "bad.toml:4:" in rendered


def test_compile_without_a_name_capable_target_fails_closed() -> None:
    ir = ir_of(POLICY)
    with pytest.raises(UnenforcedError) as info:
        compile_ir(ir, ["apparmor", "seccomp", "landlock", "systemd", "kubernetes"])
    text = str(info.value)
    assert "host names (would be enforced by nftables, egress)" in text
    assert "TLS protocols (would be enforced by egress)" in text
    compile_ir(ir, ["seccomp", "landlock", "egress"])  # names, denies and ALPN: the supervisor's


def test_every_backend_says_which_mechanism_enforces_names_addresses_ports_sni_and_alpn() -> None:
    ir = ir_of(POLICY)
    rules = {type(rc.rule).__name__ + ":" + rc.describe(): rc for rc in coverage_of(ir, list(BACKENDS))}
    api = rules["HostRule:tcp connect api.example.com 443"].selected
    assert api["apparmor"].level == Level.NONE and "never DNS names" in api["apparmor"].note
    assert api["landlock"].level == Level.NONE and "port 443 to every address" in api["landlock"].note
    assert api["seccomp"].level == Level.NONE
    assert api["kubernetes"].level == Level.NONE and "NetworkPolicy takes CIDRs" in api["kubernetes"].note
    assert api["systemd"].level == Level.NONE and "IPAddressAllow=" in api["systemd"].note
    assert api["nftables"].level == Level.APPROX and "corral resolve" in api["nftables"].note
    assert api["egress"].level == Level.APPROX and "SNI" in api["egress"].note and "domain fronting" in api["egress"].note
    net = rules["PeerDenyRule:deny tcp connect 10.0.0.0/8 *"].selected
    assert net["nftables"].level == Level.EXACT and net["egress"].level == Level.EXACT
    assert net["systemd"].level == Level.APPROX  # IPAddressDeny= drops inbound too
    alpn = rules["AlpnRule:TLS offers ALPN h2"].selected
    assert [t for t, c in alpn.items() if c.level] == ["egress"]
    out = compile_ir(ir, ["systemd", "nftables", "egress"], allow_unenforced=True).outputs
    assert "IPAddressDeny=10.0.0.0/8" in out["systemd"].content.decode()
    nft = out["nftables"].content.decode()
    assert 'set host_0_4 { type ipv4_addr; comment "*.cdn.example.com"; }' in nft
    assert "ip daddr 10.0.0.0/8 meta l4proto tcp counter reject" in nft
    assert nft.index("counter reject") < nft.index("@host_1_4 tcp dport 443 accept")  # denies come first


NFT = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)


@pytest.mark.skipif(NFT is None, reason="nftables is not installed (dev.sh installs it)")
def test_nftables_host_sets_pass_nft_check(tmp_path: Path) -> None:
    path = tmp_path / "eg.nft"
    path.write_bytes(compile_ir(ir_of(POLICY), ["nftables"], allow_unenforced=True).outputs["nftables"].content)
    proc = subprocess.run([NFT, "-c", "-f", str(path)], capture_output=True, text=True)  # type: ignore[list-item]
    assert proc.returncode == 0, proc.stderr


def test_hosts_and_denies_are_typed_rules() -> None:
    ir = ir_of(POLICY)
    assert all(isinstance(h, HostRule) for h in ir.hosts) and all(isinstance(d, PeerDenyRule) for d in ir.peer_denies)
    assert str(ir.hosts[1].span).startswith("test.toml:6:")



def test_run_dry_run_says_the_supervisor_enforces_names(tmp_path: Path) -> None:
    import sys

    policy = tmp_path / "names.toml"
    policy.write_text('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:api.example.com:443"]\nALPN = ["h2"]\n[Runtime]\nFlags = ["stdio", "exec"]\n')
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "run", "--dry-run", "--no-cache", str(policy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "egress supervisor: api.example.com:443 (TLS relay: SNI, ALPN offered: h2, chosen by the server: checked in TLS 1.2, encrypted in TLS 1.3)" in proc.stdout
    assert "landlock" in proc.stdout and "connect_tcp: 443" in proc.stdout  # the port floor


@pytest.mark.skipif(NFT is None, reason="nftables is not installed (dev.sh installs it)")
def test_corral_resolve_fills_the_name_sets_without_rebinding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.10 api.example.com\n2001:db8::10 api.example.com\n")
    policy = tmp_path / "eg.toml"
    policy.write_text(POLICY)
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "resolve", str(policy)], capture_output=True, text=True, env={**__import__("os").environ, "CORRAL_EGRESS_HOSTS": str(hosts)})
    assert proc.returncode == 0, proc.stderr
    assert "add element inet corral-eg host_1_4 { 192.0.2.10 }" in proc.stdout
    assert "add element inet corral-eg host_1_6 { 2001:db8::10 }" in proc.stdout
    assert "*.cdn.example.com: a wildcard cannot be resolved in advance" in proc.stdout
    ruleset = tmp_path / "eg.nft"
    ruleset.write_bytes(compile_ir(ir_of(POLICY), ["nftables"], allow_unenforced=True).outputs["nftables"].content + proc.stdout.encode())
    check = subprocess.run([NFT, "-c", "-f", str(ruleset)], capture_output=True, text=True)  # type: ignore[list-item]
    assert check.returncode == 0, check.stderr


def test_learning_mode_says_names_are_not_enforced(tmp_path: Path) -> None:
    import sys

    policy = tmp_path / "names.toml"
    policy.write_text('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:api.example.com:443"]\n[Runtime]\nFlags = ["stdio", "exec"]\n[Filesystem]\nExec = ["/usr/bin/true"]\n')
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "run", "--log", "--no-cache", str(policy), "true"], capture_output=True, text=True)
    assert "not enforced here: host names, Networking.Deny and ALPN (learning mode runs without the egress supervisor)" in proc.stderr, proc.stderr


def test_alpn_only_lowers_and_is_reported_exact_for_the_offer() -> None:
    """ALPN alone: the offer holds one of them (approximate: others may come
    with it). ALPNOnly: none but them (exact for the offer). Both notes say
    TLS 1.3 hides the server's choice."""
    loose = coverage_of(ir_of(POLICY), ["egress"])
    strict_ir = ir_of(POLICY + "ALPNOnly = true\n")
    assert strict_ir.alpn == (AlpnRule(("h2",), True),) and ir_of(POLICY).alpn == (AlpnRule(("h2",), False),)
    strict = coverage_of(strict_ir, ["egress"])
    (lc,) = [c.selected["egress"] for c in loose if isinstance(c.rule, AlpnRule)]
    (sc,) = [c.selected["egress"] for c in strict if isinstance(c.rule, AlpnRule)]
    assert lc.level is Level.APPROX and "curl --http2 offers h2 and http/1.1" in lc.note and "TLS 1.3 encrypts" in lc.note
    assert sc.level is Level.EXACT and "no other" in sc.note and "TLS 1.3 encrypts" in sc.note
    from corral.backends.egress import document

    assert document(strict_ir)["alpn_only"] is True and document(ir_of(POLICY))["alpn_only"] is False


HTTP_POLICY = """
Name = "plain"
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["http:API.example.com:80", "tcp:api.example.com:443", "http:*.cdn.example.com:8080"]
Deny = ["http:*.internal.example.com:*"]
"""


def test_http_names_lower_to_plain_http_host_rules() -> None:
    ir = ir_of(HTTP_POLICY)
    assert {(h.host, h.port, h.protocol, h.plain_http) for h in ir.hosts} == {
        ("api.example.com", 80, "tcp", True), ("api.example.com", 443, "tcp", False), ("*.cdn.example.com", 8080, "tcp", True),
    }  # fmt: skip
    assert {(d.host, d.protocol) for d in ir.peer_denies} == {("*.internal.example.com", "tcp")}  # denied whatever it carries
    rules = {type(rc.rule).__name__ + ":" + rc.describe(): rc for rc in coverage_of(ir, ["egress"])}
    http = rules["HostRule:http connect api.example.com 80"].selected["egress"]
    assert http.level == Level.APPROX and "every request" in http.note and "Host" in http.note
    from corral.backends.egress import document

    assert {(h["host"], h["http"]) for h in document(ir)["hosts"]} == {("api.example.com", True), ("api.example.com", False), ("*.cdn.example.com", True)}


@pytest.mark.parametrize("entry", ['Connect = ["http:80"]', 'Connect = ["http:10.0.0.1:80"]', 'Bind = ["http:80"]'])
def test_http_takes_a_host_name(entry: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy_text(f'[Networking]\nProtocols = ["tcp"]\n{entry}\n', "t.toml")
    assert "http: takes a host name" in err.value.render()
