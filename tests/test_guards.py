"""Guards: what every filter keeps refusing (corral.guards), as laws over
the comparisons and as what each target receives."""

from __future__ import annotations

import json

from conftest import ir_of
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.analyze.explain import to_json
from corral.analyze.view import from_corral as view
from corral.backends.apparmor import emit as apparmor
from corral.backends.landlock import to_document
from corral.backends.seccomp import to_oci
from corral.guards import _conj, complement
from corral.ir import SELF_PID, Alternative, ArgCmp, SyscallRule
from corral.policy.model import CmpOp

U64 = st.integers(0, 2**64 - 1)


def holds(alt: Alternative, args: dict[int, int]) -> bool:
    ops = {CmpOp.EQ: lambda v, c: v == c.value, CmpOp.NE: lambda v, c: v != c.value, CmpOp.MASKED_EQ: lambda v, c: v & c.mask == c.value}
    return all(ops[c.op](args.get(c.arg, 0), c) for c in alt)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.integers(0, 2**32 - 1), U64, st.booleans())
def test_complement_matches_exactly_what_no_form_matches(values: list[int], mask: int, x: int, near: bool) -> None:
    """On the low 32 bits the kernel reads, whatever the upper bits say."""
    if near:
        x = (x & ~0xFFFFFFFF) | (values[0] ^ (1 << (x % 32)))  # one bit away from a refused value
    forms = tuple((ArgCmp(1, CmpOp.MASKED_EQ, v & mask, mask),) for v in values)
    allowed = complement(forms)
    refused = any(holds(f, {1: x}) for f in forms)
    assert any(holds(a, {1: x}) for a in allowed) is not refused
    assert all(len({c.arg for c in a}) == len(a) for a in allowed)  # one comparison per argument: libseccomp's rule


@settings(max_examples=300, deadline=None)
@given(U64, U64, U64, U64, U64)
def test_two_argument_forms(level: int, optname: int, x1: int, x2: int, pick: int) -> None:
    form = (ArgCmp(1, CmpOp.MASKED_EQ, level & 0xFFFFFFFF, 0xFFFFFFFF), ArgCmp(2, CmpOp.MASKED_EQ, optname & 0xFFFFFFFF, 0xFFFFFFFF))
    if pick % 3 == 0:
        x1, x2 = level ^ (x1 << 32), optname ^ (x2 << 32)  # the refused pair with any upper bits
    args = {1: x1, 2: x2}
    assert any(holds(a, args) for a in complement((form,))) is not holds(form, args)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([CmpOp.EQ, CmpOp.MASKED_EQ]), st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=3), st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=3), st.integers(0, 255))
def test_conjunction_never_widens(a: list[tuple[CmpOp, int, int]], b: list[tuple[int, int]], x: int) -> None:
    """``_conj(a, b)`` holds only where both hold (dropping it is allowed:
    narrower, never wider)."""
    left = tuple(ArgCmp(1, op, v & m if op is CmpOp.MASKED_EQ else v, m) for op, v, m in a)
    right = tuple(ArgCmp(1, CmpOp.MASKED_EQ, v & m, m) for v, m in b)
    both = _conj(left, right)
    if both is not None:
        assert holds(both, {1: x}) == (holds(left, {1: x}) and holds(right, {1: x}))


POLICY = '[Runtime]\nFlags = ["stdio", "proc"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n[Misc]\nSyscalls = ["ioctl", "setsockopt"]\n'


def test_compiled_seccomp_keeps_the_guards_and_only_pid_0() -> None:
    oci = to_oci(ir_of(POLICY))
    entries = {n: [e for e in oci["syscalls"] if n in e["names"]] for n in ("ioctl", "prlimit64", "setpriority", "setsockopt", "sendto")}
    assert all("args" in e for es in entries.values() for e in es)  # none allowed outright
    assert [e["args"] for e in entries["prlimit64"]] == [[{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]]  # own pid unknown to an artifact
    assert len(entries["setpriority"]) == 1
    assert "-2" not in json.dumps(oci) and str(SELF_PID) not in json.dumps(oci)


def test_landlock_scopes_stay_unless_lifted() -> None:
    kept = to_document(ir_of(POLICY + '[[Flag]]\nName = "x"\nDescription = "x"\nProtocols = ["unix"]\n'))[0]["ruleset"][0]["scoped"]
    assert kept == ["abstract_unix_socket", "signal"]  # kill and (with unix) sockets allowed: inside the sandbox only
    lifted = ir_of(POLICY.replace('"proc"]', '"proc", "signal-outside"]'))
    assert to_document(lifted)[0]["ruleset"][0]["scoped"] == ["abstract_unix_socket"]
    assert lifted.lifted == ("processes",)
    prlimit = next(r for r in lifted.syscalls if r.name == "prlimit64")
    assert prlimit.alternatives == ()


def test_apparmor_signals_only_within_the_profile() -> None:
    text = apparmor(ir_of('Name = "p"\n' + POLICY)).content.decode()
    assert "  signal (send, receive) peer=p,\n" in text and "  signal,\n" not in text
    lifted = apparmor(ir_of('Name = "p"\n' + POLICY.replace('"proc"]', '"proc", "signal-outside"]'))).content.decode()
    assert "  signal,\n" in lifted


def test_explain_lists_what_is_kept_and_what_is_lifted(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.toml"
    path.write_text(POLICY.replace('"proc"]', '"proc", "signal-outside"]'))
    guards = {g["guard"]: g for g in json.loads(to_json(view(str(path))))["guards"]}
    assert guards["processes"]["lifted"] and guards["processes"]["lifted_by"] == "signal-outside"
    assert not guards["terminal"]["lifted"] and guards["terminal"]["lifted_by"] == ""


def test_protocol_numbers_per_family() -> None:
    ir = ir_of('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "icmp", "mptcp"]\n')
    assert {(s.family, s.type): s.protocols for s in ir.sockets} == {("inet", "stream"): (0, 6, 262), ("inet6", "stream"): (0, 6, 262), ("inet", "dgram"): (1,), ("inet6", "dgram"): (58,)}
    assert ir.unported == ("mptcp",)
    socket = next(r for r in ir.syscalls if r.name == "socket")
    assert all(any(c.arg == 2 for c in alt) for alt in socket.alternatives)


def test_refused_forms_are_refusals_for_learning_mode() -> None:
    ir = ir_of(POLICY)
    names = {r.name for r in ir.refusals}
    assert {"ioctl", "sendto", "sendmsg", "sendmmsg", "setsockopt", "prlimit64"} <= names
    assert all(isinstance(r, SyscallRule) and r.errno == 1 for r in ir.refusals)


# -- a law across the socket filters: data, OCI JSON, the kernel ---------------------------

FAMILIES = (1, 2, 10, 16, 17, 40)
TYPES = (1, 2, 3, 5)
NUMBERS = (0, 1, 6, 17, 58, 132, 136, 262, 0x300, (1 << 32) | 6)


def _expected(protocols: list[str], family: int, type_: int, number: int) -> bool:
    """What protocols.toml says: some named protocol has the pair and the number."""
    from corral.policy import catalog

    protos, families, types = catalog.protocol_tables()
    for name in protocols:
        for fam, typ in protos[name].sockets:
            if (families[fam], types[typ]) == (family, type_):
                numbers = protos[name].numbers_for(fam)
                if -1 in numbers or number in numbers:
                    return True
    return False


def _oci_allows(oci: dict, args: tuple[int, ...]) -> bool:
    """The OCI JSON read the way runc/libseccomp read it."""
    ops = {"SCMP_CMP_EQ": lambda v, a: v == a["value"], "SCMP_CMP_MASKED_EQ": lambda v, a: v & a["value"] == a.get("valueTwo", 0)}
    for entry in oci["syscalls"]:
        if "socket" in entry["names"] and entry["action"] == "SCMP_ACT_ALLOW":
            if all(ops[a["op"]](args[a["index"]], a) for a in entry.get("args", [])):
                return True
    return False


def _kernel_allows(bpf: bytes, args: tuple[int, ...]) -> bool:
    """The BPF loaded in a forked child; socket(2) made for real."""
    import ctypes
    import errno as errno_mod
    import os

    from corral.sandbox import kernel

    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            kernel.set_no_new_privs()
            kernel.seccomp_load(bpf)
            ret = kernel._libc.syscall(ctypes.c_long(41), *(ctypes.c_ulong(a) for a in args))  # x86_64 socket
            code = 1 if ret < 0 and ctypes.get_errno() == errno_mod.EPERM else 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1), status
    return os.WEXITSTATUS(status) == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["tcp", "udp", "icmp", "raw", "unix", "netlink", "packet", "mptcp", "udplite", "sctp"]), min_size=1, max_size=4, unique=True),
    st.sampled_from(FAMILIES), st.sampled_from(TYPES), st.sampled_from(NUMBERS),
)  # fmt: skip
def test_socket_filters_agree_with_the_protocol_table(protocols: list[str], family: int, type_: int, number: int) -> None:
    """For any named protocols and any socket(2) triple: the catalogue, the
    OCI JSON and the kernel running libseccomp's BPF give one answer (an
    unknown or unloaded protocol may still fail later with its own errno:
    only EPERM from the filter counts as refused)."""
    import platform

    from corral import _seccomp

    ir = ir_of('[Runtime]\nFlags = ["stdio"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = [' + ", ".join(f'"{p}"' for p in protocols) + "]\n")
    args = (family, type_ | 0x80000, number)  # SOCK_CLOEXEC rides along in the type
    want = _expected(protocols, family, type_, number)
    assert _oci_allows(to_oci(ir), args) == want
    if platform.machine() == "x86_64":
        assert _kernel_allows(_seccomp.build(ir.syscalls).export_bpf(), args) == want


def test_lifting_fastopen_or_naming_mptcp_is_reported_as_not_enforced() -> None:
    from corral.backends import Level
    from corral.ir import PortRule
    from corral.sandbox import plan as plans

    for extra, what in (('Flags = ["outgoing", "fastopen"]\nProtocols = ["tcp"]', "TCP Fast Open"), ('Flags = ["outgoing"]\nProtocols = ["tcp", "sctp"]', "sctp")):
        ir = ir_of(f'[Runtime]\nFlags = ["stdio"]\n[Networking]\n{extra}\nConnect = ["tcp:443"]\n')
        cov = next(c for c in to_document(ir)[1] if isinstance(c.rule, PortRule))
        assert cov.level is Level.APPROX and what in cov.note
        assert any(what.split()[0].lower() in line.lower() for line in plans.build(ir, [])["unenforced_ports"])
    plain = ir_of('[Runtime]\nFlags = ["stdio"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nConnect = ["tcp:443"]\n')
    assert plans.build(plain, [])["unenforced_ports"] == []
