"""Lowering: flags, user flags, deny-overrides and the network rules."""

from __future__ import annotations

import errno
import json

from conftest import ir_of

from corral.backends import BACKENDS, Level
from corral.backends.landlock import to_document
from corral.ir import ANY_PORT, Access


def test_user_defined_flag_end_to_end() -> None:
    ir = ir_of(
        """
        [Networking]
        Flags = ["grpc-keepalive"]
        Protocols = ["tcp"]

        [[Flag]]
        Name = "grpc-keepalive"
        Description = "gRPC keepalive probes"
        Category = "Networking"
        Syscalls = ["getsockopt"]
        SocketOptions = ["so_keepalive", "tcp_keepidle", "tcp_keepintvl", "tcp_keepcnt"]
        Writable = ["/run/grpc/**"]
        [Flag.Args]
        fcntl = [[{ arg = 1, in = [1, 2] }]]
        """.replace("\n        ", "\n")
    )
    assert [o.name for o in ir.socket_options] == ["so_keepalive", "tcp_keepcnt", "tcp_keepidle", "tcp_keepintvl"]
    setsockopt = next(r for r in ir.syscalls if r.name == "setsockopt")
    assert {(a[0].value, a[1].value) for a in setsockopt.alternatives} == {(1, 9), (6, 4), (6, 5), (6, 6)}
    fcntl = next(r for r in ir.syscalls if r.name == "fcntl")
    assert [str(c) for alt in fcntl.alternatives for c in alt] == ["arg1 == 0x1", "arg1 == 0x2"]
    assert [(f.path, f.access) for f in ir.files] == [("/run/grpc/**", Access.READ | Access.WRITE | Access.LOCK | Access.LINK)]
    assert {r.name: r.origin for r in ir.syscalls}["getsockopt"] == "flag grpc-keepalive"
    # the writable path implies the operations it needs: seccomp cannot see paths
    assert {r.name: r.origin for r in ir.syscalls}["unlink"] == "flag cpath (implied by flag grpc-keepalive)"


def test_writable_and_exec_paths_imply_their_operations_unless_denied() -> None:
    ir = ir_of('[Filesystem]\nWritable = ["/run/x/**"]\nExec = ["/usr/bin/true"]\n')
    names = {r.name for r in ir.syscalls}
    assert {"openat", "unlinkat", "execve", "ftruncate"} <= names
    denied = ir_of('[Filesystem]\nWritable = ["/run/x/**"]\nDenyFlags = ["cpath"]\n')
    assert "unlinkat" not in {r.name for r in denied.syscalls}


def test_deny_flag_denies_everything_it_names() -> None:
    ir = ir_of('[Misc]\nFlags = ["chroot"]\nSyscalls = ["ptrace", "getpid"]\nDenyFlags = ["ptrace"]\n[User]\nCapabilities = ["sys_ptrace", "kill"]\n')
    assert [r.name for r in ir.syscalls] == ["chroot", "getpid"]
    assert [(c.name, c.deny) for c in ir.capabilities] == [("kill", False), ("sys_chroot", False), ("sys_ptrace", True)]
    assert "ptrace" in {r.name for r in ir.denied_syscalls}


def test_unconditional_allow_absorbs_filters_and_errno_stubs() -> None:
    ir = ir_of('[Runtime]\nFlags = ["threads"]\n[Misc]\nFlags = ["namespaces"]\n')
    clone, clone3 = (next(r for r in ir.syscalls if r.name == n) for n in ("clone", "clone3"))
    assert clone.alternatives == () and clone3.errno is None


def test_errno_stub_survives_when_nothing_allows_the_call() -> None:
    ir = ir_of('[Runtime]\nFlags = ["threads"]\n')
    assert next(r for r in ir.syscalls if r.name == "clone3").errno == errno.ENOSYS


def test_setsockopt_allowed_outright_is_not_filtered() -> None:
    ir = ir_of('[Networking]\nFlags = ["ping"]\nSocketOptions = ["tcp_nodelay"]\n')
    assert not ir.setsockopt_filtered
    setsockopt = next(r for r in ir.syscalls if r.name == "setsockopt")
    assert setsockopt.outright and setsockopt.narrowed_by == ("fastopen", "forged-packets")  # all but TCP_FASTOPEN_CONNECT, IP(V6)_HDRINCL, IP(V6)_TRANSPARENT


def test_socket_is_limited_to_protocols() -> None:
    ir = ir_of('[Networking]\nFlags = ["outgoing"]\nProtocols = ["unix"]\n')
    socket = next(r for r in ir.syscalls if r.name == "socket")
    assert [(a[0].value, a[1].value, a[1].mask) for a in socket.alternatives] == [(1, 2, 0xF), (1, 5, 0xF), (1, 1, 0xF)]


def test_ports_and_landlock() -> None:
    ir = ir_of('[Networking]\nFlags = ["outgoing", "incoming"]\nProtocols = ["tcp"]\nConnect = ["tcp:443", "tcp:8000-8002"]\nBind = ["tcp:*"]\n')
    assert [(p.direction, p.port) for p in ir.ports] == [("bind", ANY_PORT), ("connect", 443), ("connect", 8000), ("connect", 8001), ("connect", 8002)]
    doc, _ = to_document(ir)
    assert doc["ruleset"][0]["handledAccessNet"] == ["connect_tcp"]  # any bind port: not handled
    assert doc["netPort"] == [{"allowedAccess": ["connect_tcp"], "port": [443, 8000, 8001, 8002]}]


def test_landlock_maps_globs_to_directories() -> None:
    ir = ir_of('[Filesystem]\nReadOnly = ["/etc/ssl/**", "/srv/*.txt", "/etc/hosts"]\nWritable = ["/run/app/{,**}"]\nDeny = ["/etc/ssl/private/**", "/home/**"]\n')
    doc, cov = to_document(ir)
    assert [(g["parent"][0], "write_file" in g["allowedAccess"]) for g in doc["pathBeneath"]] == [
        ("/etc/hosts", False), ("/etc/ssl", False), ("/run/app", True), ("/srv", False)]  # fmt: skip
    levels = {getattr(c.rule, "path", None): c.level for c in cov if hasattr(c.rule, "path")}
    assert levels["/etc/ssl/**"] == Level.APPROX  # Landlock does not mediate mmap(PROT_EXEC) or metadata
    assert levels["/srv/*.txt"] == Level.APPROX
    assert levels["/run/app/{,**}"] == Level.APPROX  # the bare directory /run/app/ widens to beneath
    assert levels["/etc/ssl/private/**"] == Level.NONE  # deny inside an allowed directory
    assert levels["/home/**"] == Level.APPROX  # nothing allowed contains it, but chmod/utimensat are not mediated


def test_ir_json_round_trip_is_stable() -> None:
    a = ir_of('[Runtime]\nFlags = ["stdio", "malloc"]\n').to_json()
    b = ir_of('[Runtime]\nFlags = ["malloc", "stdio"]\n').to_json()
    assert json.loads(a)["syscalls"] and [s["name"] for s in json.loads(a)["syscalls"]] == [s["name"] for s in json.loads(b)["syscalls"]]


def test_template_extends_merges_with_deny_overrides(tmp_path) -> None:
    ir = ir_of('Extends = ["base"]\n[Runtime]\nDenyFlags = ["threads"]\n')
    names = {r.name for r in ir.syscalls}
    assert "futex" not in names and "read" in names and "mmap" in names
    out = json.loads(BACKENDS["seccomp"].emit(ir).content)
    assert "futex" not in {n for e in out["syscalls"] for n in e["names"]}


def test_imply_flags_can_be_turned_off() -> None:
    ir = ir_of('[Filesystem]\nWritable = ["/run/x/**"]\n[Misc]\nImplyFlags = false\nSyscalls = ["openat"]\n')
    assert [r.name for r in ir.syscalls] == ["openat"]


def test_imply_flags_must_be_a_boolean() -> None:
    import pytest

    from corral import PolicyError

    with pytest.raises(PolicyError) as info:
        ir_of('[Misc]\nImplyFlags = "no"\n')
    assert "test.toml:2:14: error[E003]: Misc.ImplyFlags must be true or false, found str" in str(info.value)


def test_peer_addresses_and_udp_ports() -> None:
    ir = ir_of('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "udp"]\nConnect = ["tcp:10.0.0.0/8:5432", "tcp:[2001:db8::1]:443", "udp:53"]\n')
    assert sorted((p.protocol, p.address, p.port) for p in ir.ports) == [("tcp", "10.0.0.0/8", 5432), ("tcp", "2001:db8::1", 443), ("udp", "", 53)]
    _, cov = to_document(ir)
    levels = {(c.rule.protocol, c.rule.port): c.level for c in cov if type(c.rule).__name__ == "PortRule"}
    assert levels == {("tcp", 5432): Level.APPROX, ("tcp", 443): Level.APPROX, ("udp", 53): Level.NONE}


def test_port_ranges_against_denies_take_work_linear_in_the_ports(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each allowed port is decided against the denies indexed by port: a
    range of N ports against M denied ones took N x M comparisons (16
    ranges of 1024 took minutes). Steps are counted, not time: every
    allowed port is compared with at most the denies at its own port and at
    any port, and every backend asks whether a policy is supervised in
    constant time."""
    import corral.lower as lowering
    from corral.compile import coverage_of
    from corral.ir import IR

    calls = {"peer": 0, "egress": 0}
    real_peer, real_egress = lowering._peer_denied, IR.egress

    def peer(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["peer"] += 1
        return real_peer(*args, **kwargs)

    def egress(self):  # type: ignore[no-untyped-def]
        calls["egress"] += 1
        return real_egress(self)

    monkeypatch.setattr(lowering, "_peer_denied", peer)
    monkeypatch.setattr(IR, "egress", egress)
    n = 8
    connect = ", ".join(f'"tcp:10.0.0.0/8:{1 + i * 1024}-{1024 + i * 1024}", "tcp:api.example.com:{1 + i * 1024}-{1024 + i * 1024}"' for i in range(n))
    deny = ", ".join(f'"tcp:10.1.0.0/16:{1 + i * 1024}-{1000 + i * 1024}", "tcp:{1001 + i * 1024}-{1010 + i * 1024}"' for i in range(n))
    ir = ir_of(f'[Networking]\nProtocols = ["tcp"]\nConnect = [{connect}]\nDeny = [{deny}]\n')
    allowed = 2 * n * 1024
    assert calls["peer"] <= allowed, calls  # one denied peer at each port: at most one comparison per allowed port
    assert len(ir.ports) == n * 1024 - n * 10 and len(ir.hosts) == n * 1024 - n * 10  # Deny tcp:PORT wins over addresses and names
    assert all(p.port % 1024 not in range(1001, 1011) for p in ir.ports)
    calls["egress"] = 0
    coverage_of(ir, list(BACKENDS))
    assert calls["egress"] <= 2 * len(BACKENDS), calls
