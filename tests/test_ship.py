"""Docker, systemd and Kubernetes outputs, checked by the real tools where
they run here (systemd-analyze, kubernetes-validate) and against the
fields the consumers define where they do not (compose, the Security
Profiles Operator's CRDs)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from corral.backends import BACKENDS
from corral.lower import lower
from corral.policy import load_policy, load_policy_text

EXAMPLES = {p.stem: lower(load_policy(p)) for p in sorted((ROOT / "examples").glob("*.toml"))}


def emit(target: str, name: str) -> str:
    return BACKENDS[target].emit(EXAMPLES[name]).content.decode()


# -- systemd -------------------------------------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _unit(tmp: Path, drop_in: str | None) -> Path:
    unit = tmp / "agent.service"
    unit.write_text("[Unit]\nDescription=agent\n[Service]\nExecStart=/bin/true\n")
    if drop_in is not None:
        (tmp / "agent.service.d").mkdir(exist_ok=True)
        (tmp / "agent.service.d/corral.conf").write_text(drop_in)
    return unit


def _exposure(unit: Path) -> float:
    out = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True).stdout  # type: ignore[list-item]
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_systemd_drop_in_verifies_and_lowers_exposure(tmp_path: Path, name: str) -> None:
    (tmp_path / "a").mkdir()
    before = _exposure(_unit(tmp_path / "a", None))
    drop_in = emit("systemd", name)
    (tmp_path / "b").mkdir()
    unit = _unit(tmp_path / "b", drop_in)
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True)  # type: ignore[list-item]
    problems = [l for l in proc.stderr.splitlines() if "corral.conf" in l or "Unknown" in l or "Failed to parse" in l or "Invalid" in l]
    assert problems == [], problems
    after = _exposure(unit)
    print(f"{name}: systemd-analyze security exposure {before} -> {after}")
    assert after < before - 3


def test_systemd_drop_in_says_what_it_sets() -> None:
    text = emit("systemd", "agent-http2")
    for line in ("AppArmorProfile=agent-http2", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "SystemCallArchitectures=native",
                 "RestrictAddressFamilies=AF_INET AF_INET6", "RuntimeDirectory=agent-http2", "PrivateTmp=yes", "InaccessiblePaths=-/tmp", "SocketBindDeny=any"):  # fmt: skip
        assert line in text.splitlines(), line
    web = emit("systemd", "nodejs-web").splitlines()
    assert "SocketBindAllow=tcp:8080" in web and "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in web


# -- docker --------------------------------------------------------------------

COMPOSE_SERVICE_KEYS = {"security_opt", "cap_drop", "cap_add", "read_only", "tmpfs"}  # compose-spec service properties used


def test_docker_compose_snippet_and_flags() -> None:
    text = emit("docker", "agent-http2")
    doc = yaml.safe_load(text)
    service = doc["services"]["agent-http2"]
    assert set(service) <= COMPOSE_SERVICE_KEYS
    assert service["security_opt"] == ["apparmor=agent-http2", "seccomp=./agent-http2.seccomp.json", "no-new-privileges:true"]
    assert service["cap_drop"] == ["ALL"] and "cap_add" not in service
    assert service["read_only"] is True and service["tmpfs"] == ["/run/agent-http2"]
    assert "#     --cap-drop=ALL \\" in text and "#     --tmpfs /run/agent-http2 \\" in text
    web = yaml.safe_load(emit("docker", "nodejs-web"))["services"]["nodejs-web"]
    assert web["cap_add"] == ["NET_BIND_SERVICE"]


# -- kubernetes ----------------------------------------------------------------

#: Fields of the Security Profiles Operator CRDs (api/seccompprofile/v1beta1,
#: api/apparmorprofile/v1alpha1): what our objects may use.
SPO_SECCOMP_SPEC = {"defaultAction", "architectures", "syscalls", "flags", "baseProfileName", "disabled"}
SPO_SECCOMP_SYSCALL = {"names", "action", "errnoRet", "args"}
SPO_SECCOMP_ARG = {"index", "value", "valueTwo", "op"}
SPO_APPARMOR_ABSTRACT = {"executable": {"allowedExecutables", "allowedLibraries"}, "filesystem": {"readOnlyPaths", "writeOnlyPaths", "readWritePaths"},
                         "network": {"allowRaw", "allowedProtocols"}, "capability": {"allowedCapabilities"}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_kubernetes_objects(tmp_path: Path, name: str) -> None:
    text = emit("kubernetes", name)
    pod, seccomp, apparmor = list(yaml.safe_load_all(text))
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    proc = subprocess.run([shutil.which("kubernetes-validate") or str(ROOT / ".venv/bin/kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
    assert ctx["appArmorProfile"] == {"type": "Localhost", "localhostProfile": name}
    assert pod["metadata"]["annotations"][f"container.apparmor.security.beta.kubernetes.io/{name}"] == f"localhost/{name}"
    assert seccomp["apiVersion"] == "security-profiles-operator.x-k8s.io/v1beta1" and set(seccomp["spec"]) <= SPO_SECCOMP_SPEC
    for entry in seccomp["spec"]["syscalls"]:
        assert set(entry) <= SPO_SECCOMP_SYSCALL, entry
        for arg in entry.get("args", []):
            assert set(arg) <= SPO_SECCOMP_ARG
    abstract = apparmor["spec"]["abstract"]
    for section, fields in abstract.items():
        assert set(fields) <= SPO_APPARMOR_ABSTRACT[section]
    assert set(abstract["network"]["allowedProtocols"]) <= {"allowTcp", "allowUdp"}


# -- nftables --------------------------------------------------------------------

NFT = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)


@pytest.mark.skipif(NFT is None, reason="nftables is not installed (dev.sh installs it)")
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_nftables_rulesets_pass_nft_check(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.nft"
    path.write_text(emit("nftables", name))
    proc = subprocess.run([NFT, "-c", "-f", str(path)], capture_output=True, text=True)  # type: ignore[list-item]
    assert proc.returncode == 0, proc.stderr


PEER_POLICY = """
Name = "peer"
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:127.0.0.1:18443", "tcp:[::1]:18444"]
"""

PROBE = """
import socket, sys
for host, port in (("127.0.0.1", 18443), ("127.0.0.1", 18445), ("::1", 18444), ("::1", 18443)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print(host, port, "connected")
    except OSError as exc:
        print(host, port, type(exc).__name__)
"""


@pytest.mark.skipif(NFT is None or os.geteuid() != 0, reason="needs nftables and root (a private network namespace)")
def test_nftables_enforces_peers_and_ports_in_a_network_namespace(tmp_path: Path) -> None:
    """Loaded for real, in a network namespace of its own: the confined user
    reaches exactly the address/port pairs of the policy; root is untouched."""
    from corral.backends.nftables import ruleset

    rules = tmp_path / "peer.nft"
    rules.write_text(ruleset(lower(load_policy_text(PEER_POLICY, "peer.toml"))))
    server = tmp_path / "serve.py"
    server.write_text(
        "import socket, time\n"
        "socks = []\n"
        "for fam, host, port in ((socket.AF_INET, '127.0.0.1', 18443), (socket.AF_INET, '127.0.0.1', 18445), (socket.AF_INET6, '::1', 18444), (socket.AF_INET6, '::1', 18443)):\n"
        "    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, port)); s.listen(); socks.append(s)\n"
        "time.sleep(30)\n"
    )
    import shlex

    probe = shlex.quote(PROBE)
    script = (
        f"ip link set lo up && {NFT} -f {rules} && {{ {sys.executable} {server} & srv=$!; sleep 1; "
        f"setpriv --reuid=65534 --regid=65534 --clear-groups {sys.executable} -I -c {probe}; echo ROOT; {sys.executable} -I -c {probe}; kill $srv; }}"
    )
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    confined, _, unconfined = proc.stdout.partition("ROOT\n")
    assert confined.splitlines() == ["127.0.0.1 18443 connected", "127.0.0.1 18445 ConnectionRefusedError", "::1 18444 connected", "::1 18443 ConnectionRefusedError"], proc.stdout + proc.stderr
    assert all(line.endswith("connected") for line in unconfined.splitlines()), unconfined


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_paths_with_spaces_and_percent_stay_one_word(tmp_path: Path) -> None:
    """A space would split systemd's path list and '%' is a specifier: both
    are escaped, and systemd-analyze reads every path back without a word."""
    ir = lower(load_policy_text('[Filesystem]\nWritable = ["/srv/my dir %h/**", "/run/odd name/**"]\nDeny = ["/srv/a%nb/**"]\n', "hostile.toml"))
    drop_in = BACKENDS["systemd"].emit(ir).content.decode()
    assert 'ReadWritePaths="-/srv/my dir %%h"' in drop_in.splitlines()
    assert "InaccessiblePaths=-/srv/a%%nb" in drop_in.splitlines()
    unit = _unit(tmp_path, drop_in)
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True)  # type: ignore[list-item]
    assert proc.returncode == 0 and "corral.conf" not in proc.stderr, proc.stderr


def test_kubernetes_names_follow_rfc_1123(tmp_path: Path) -> None:
    ir = lower(load_policy_text('Name = "My_Agent.v2"\n[User]\nCapabilities = ["net_bind_service"]\n', "p.toml"))
    pod = next(yaml.safe_load_all(BACKENDS["kubernetes"].emit(ir).content.decode()))
    assert pod["metadata"]["name"] == "my-agent.v2" and pod["spec"]["containers"][0]["name"] == "my-agent-v2"
    assert pod["spec"]["containers"][0]["securityContext"]["appArmorProfile"]["localhostProfile"] == "my-agent.v2"  # the name the SPO object installs
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    proc = subprocess.run([shutil.which("kubernetes-validate") or str(ROOT / ".venv/bin/kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_hostile_paths_are_one_word_or_left_out(tmp_path: Path) -> None:
    """Issue 9's systemd items: a ' in a Deny path made a line systemd
    ignores; a class or brace in a glob dropped the setting or became
    ReadWritePaths=-/ while coverage said exact. Now every line is read back
    whole, a glob never opens or hides / and what is left out says so."""
    text = """[Filesystem]
Deny = ["/srv/it's/**", "/srv/[ab]/x", "/srv/{c,d}/**", "/srv/e\\\\[f\\\\]/**", "/[xy]z/**"]
Writable = ["/a{x,[,}]}", "/srv/w{1,2}/**", "/srv/semi;colon $HOME/**"]
"""
    ir = lower(load_policy_text(text, "hostile.toml"))
    out = BACKENDS["systemd"].emit(ir)
    lines = out.content.decode().splitlines()
    assert "InaccessiblePaths=\"-/srv/it's\"" in lines
    assert "InaccessiblePaths=\"-/srv/e[f]\"" in lines  # the glob escapes are gone: systemd takes the path as written
    assert {"InaccessiblePaths=-/srv/c", "InaccessiblePaths=-/srv/d", "ReadWritePaths=-/srv/w1", "ReadWritePaths=-/srv/w2"} <= set(lines)
    assert 'ReadWritePaths="-/srv/semi;colon $HOME"' in lines
    assert not [l for l in lines if l.rstrip('"') in ("ReadWritePaths=-/", "InaccessiblePaths=-/", 'ReadWritePaths="-/', 'InaccessiblePaths="-/')], lines
    levels = {c.rule.path: c.level.name for c in out.coverage if hasattr(c.rule, "path")}
    assert levels["/a{x,[,}]}"] == "NONE" and levels["/[xy]z/**"] == "NONE"
    assert levels["/srv/[ab]/x"] == "APPROX" and levels["/srv/it's/**"] == "EXACT"
    unit = _unit(tmp_path, out.content.decode())
    proc = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True)  # type: ignore[list-item]
    assert "corral.conf" not in proc.stderr, proc.stderr


ANY_PROTOCOL_POLICY = """
Name = "anyproto"
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:18080"]
"""


@pytest.mark.skipif(NFT is None or os.geteuid() != 0, reason="needs nftables and root (a private network namespace)")
def test_nftables_rejects_every_protocol_it_does_not_accept(tmp_path: Path) -> None:
    """Issue 9: UDP-Lite left the namespace while TCP/UDP were filtered. In a
    private network namespace, the confined uid reaches the one TCP port the
    policy names (over TCP and MPTCP) and nothing else, whatever the protocol."""
    from corral.backends.nftables import ruleset

    rules = tmp_path / "anyproto.nft"
    rules.write_text(ruleset(lower(load_policy_text(ANY_PROTOCOL_POLICY, "anyproto.toml"))))
    attacks = ROOT / "tests" / "consumers" / "net_attacks.py"
    script = f"ip link set lo up && {NFT} -f {rules} && {sys.executable} -I {attacks} 65534 18080 18099"
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    got = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    assert got.get("tcp-allowed") == ["sent", "received"] and got.get("mptcp-allowed") == ["sent", "received"], proc.stdout + proc.stderr
    for name in ("tcp-denied", "mptcp-denied", "udp-denied", "udplite", "udplite6", "sctp", "icmp-ping", "icmp6-ping"):
        _, arrived = got[name]  # (an ICMPv6 ping socket is not told of the drop: what counts is that nothing arrives)
        assert arrived in ("nothing", "unsupported"), (name, proc.stdout)
    # and without the ruleset, every one of them arrives: the attacks are real
    bare = subprocess.run(["unshare", "--net", "sh", "-c", f"ip link set lo up && {sys.executable} -I {attacks} 65534 18080 18099"], capture_output=True, text=True, timeout=120)
    assert all(line.split()[2] in ("received", "unsupported") for line in bare.stdout.splitlines()), bare.stdout + bare.stderr
    for name in ("udplite", "udplite6", "icmp-ping", "icmp6-ping"):
        assert f"{name} sent received" in bare.stdout, bare.stdout
