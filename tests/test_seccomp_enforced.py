"""The seccomp filters corral builds, loaded for real into a child process."""

from __future__ import annotations

import ctypes
import errno
import json
import socket

from conftest import ROOT, ir_of, reference, run_under_filter, syscall_probe

from corral.backends.seccomp import emit_bpf, to_oci
from corral.lower import lower
from corral.policy import load_policy

ONE = ctypes.c_int(1)
AGENT = lower(load_policy(ROOT / "examples/agent-http2.toml"))


def _setsockopt(fd: int, level: int, optname: int):
    return syscall_probe("setsockopt", fd, level, optname, ctypes.byref(ONE), 4)


def test_setsockopt_pairs_not_numbers() -> None:
    """TCP_NODELAY (6, 1) is allowed; SO_DEBUG (1, 1) and IP_TOS (0, 1) share
    the option number 1 and must still fail with EPERM."""
    with socket.socket() as s:
        fd = s.fileno()
        results = run_under_filter(AGENT, [
            _setsockopt(fd, socket.IPPROTO_TCP, socket.TCP_NODELAY),
            _setsockopt(fd, socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            _setsockopt(fd, socket.SOL_SOCKET, socket.SO_DEBUG),
            _setsockopt(fd, socket.IPPROTO_IP, socket.IP_TOS),
            _setsockopt(fd, socket.IPPROTO_TCP, 18),  # TCP_USER_TIMEOUT: not in the agent's list
        ])  # fmt: skip
    assert results[0] == (0, 0)
    assert results[1] == (0, 0)
    assert results[2] == (-1, errno.EPERM)
    assert results[3] == (-1, errno.EPERM)
    assert results[4] == (-1, errno.EPERM)


def test_socket_families_and_types() -> None:
    """The agent allows TCP (and DNS's UDP) over IPv4/IPv6, nothing else;
    SOCK_NONBLOCK/SOCK_CLOEXEC in the type argument do not matter."""
    results = run_under_filter(AGENT, [
        syscall_probe("socket", socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, 0),
        syscall_probe("socket", socket.AF_INET6, socket.SOCK_DGRAM, 0),
        syscall_probe("socket", socket.AF_UNIX, socket.SOCK_STREAM, 0),
        syscall_probe("socket", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        syscall_probe("socket", socket.AF_PACKET, socket.SOCK_RAW, 0),
        syscall_probe("socket", socket.AF_NETLINK, socket.SOCK_RAW, 0),
    ])  # fmt: skip
    assert results[0][0] >= 0 and results[1][0] >= 0
    assert results[2:] == [(-1, errno.EPERM)] * 4


def test_clone_namespace_flags_and_clone3() -> None:
    """threads/proc allow clone only without CLONE_NEW* flags; clone3 answers
    ENOSYS so that glibc falls back to the filterable clone."""
    clone_newuser = 0x10000000
    results = run_under_filter(AGENT, [
        syscall_probe("clone", clone_newuser | 17, 0, 0, 0, 0),
        syscall_probe("clone3", 0, 0),
        syscall_probe("unshare", clone_newuser),
    ])  # fmt: skip
    assert results == [(-1, errno.EPERM), (-1, errno.ENOSYS), (-1, errno.EPERM)]


def test_rpath_opens_read_only() -> None:
    """rpath allows openat without O_WRONLY/O_RDWR/O_CREAT/O_TRUNC only."""
    ir = ir_of('[Filesystem]\nFlags = ["rpath"]\n')
    path = ctypes.c_char_p(b"/etc/hostname")
    at_fdcwd = -100
    results = run_under_filter(ir, [
        syscall_probe("openat", at_fdcwd, path, 0),           # O_RDONLY
        syscall_probe("openat", at_fdcwd, path, 1),           # O_WRONLY
        syscall_probe("openat", at_fdcwd, path, 0o100 | 0),   # O_CREAT
        syscall_probe("openat", at_fdcwd, path, 0o1000),      # O_TRUNC
    ])  # fmt: skip
    assert results[0][0] >= 0
    assert results[1:] == [(-1, errno.EPERM)] * 3


def test_deny_overrides_allow_in_the_kernel() -> None:
    """Misc.Syscalls allows getpid, DenySyscalls denies it: the kernel says EPERM."""
    ir = ir_of('[Misc]\nSyscalls = ["getpid", "getppid"]\nDenySyscalls = ["getpid"]\n')
    results = run_under_filter(ir, [syscall_probe("getpid"), syscall_probe("getppid")])
    assert results[0] == (-1, errno.EPERM)
    assert results[1][0] > 0


def test_empty_policy_allows_nothing_in_the_kernel() -> None:
    ir = ir_of("")
    results = run_under_filter(ir, [syscall_probe("getpid"), syscall_probe("getuid"), syscall_probe("write", 1, b"x", 1)])
    assert results == [(-1, errno.EPERM)] * 3


def test_oci_json_and_bpf_say_the_same() -> None:
    """An independent reading of the OCI JSON, fed to libseccomp, produces
    the very BPF program corral exports: the two artifacts agree."""
    import pyseccomp as lib

    oci = to_oci(AGENT)
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == errno.EPERM
    ctx = lib.SyscallFilter(lib.ERRNO(oci["defaultErrnoRet"]))
    ctx.set_attr(lib.Attr.ACT_BADARCH, lib.KILL_PROCESS)
    ctx.set_attr(lib.Attr.CTL_OPTIMIZE, 2)
    for entry in oci["syscalls"]:
        action = lib.ALLOW if entry["action"] == "SCMP_ACT_ALLOW" else lib.ERRNO(entry["errnoRet"])
        for name in entry["names"]:
            args = [lib.Arg(a["index"], getattr(lib, a["op"].removeprefix("SCMP_CMP_")), a["value"], a.get("valueTwo", 0)) for a in entry.get("args", [])]
            ctx.add_rule(action, name, *args)
    import tempfile

    with tempfile.TemporaryFile() as fh:
        ctx.export_bpf(fh)
        fh.seek(0)
        independent = fh.read()
    assert emit_bpf(AGENT).content == independent


def test_oci_json_has_docker_shape() -> None:
    """Same top-level keys and entry keys as Docker's own default profile."""
    docker = json.loads(reference("docker-default-seccomp.json", "Docker's default seccomp profile (moby profiles/seccomp/default.json)").read_text())
    oci = to_oci(AGENT)
    assert {"defaultAction", "syscalls"} <= set(docker) and {"defaultAction", "syscalls"} <= set(oci)
    docker_entry_keys = {k for e in docker["syscalls"] for k in e}
    assert {k for e in oci["syscalls"] for k in e} <= docker_entry_keys
    oci_arg_keys = {"index", "value", "valueTwo", "op"}  # runtime-spec LinuxSeccompArg
    assert {k for e in docker["syscalls"] for a in e.get("args") or [] for k in a} <= oci_arg_keys
    assert {k for e in oci["syscalls"] for a in e.get("args", []) for k in a} <= oci_arg_keys
    assert set(oci["architectures"]) <= {a for m in docker["archMap"] for a in [m["architecture"], *(m["subArchitectures"] or [])]}


def test_bpf_for_both_arches() -> None:
    x86 = emit_bpf(AGENT, "x86_64").content
    arm = emit_bpf(AGENT, "aarch64").content
    assert len(x86) % 8 == 0 and len(arm) % 8 == 0 and x86 != arm
    # both check their own AUDIT_ARCH value first
    assert (0xC000003E).to_bytes(4, "little") in x86
    assert (0xC00000B7).to_bytes(4, "little") in arm
