"""Attacks on the network, other processes and the terminal (issue 9,
classes 1, 2 and 8, and the classics that must keep holding).

Each attack is a static C probe (net_probe.c) under ``corral run``, as root
and as nobody, asserting the kernel's answer. Where a flag lifts a guard,
the same attack is run under the lifted policy and must succeed: that
proves the attack is real on this kernel, so its refusal means something.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import NOBODY, USERS, Confined, as_user, policy_file

#: What a policy that trusts the program a lot still keeps: every call here
#: is allowed outright, and the guards must narrow them anyway.
WIDE = """
Name = "net-wide"
Extends = ["base"]
[Networking]
Flags = ["dns", "outgoing", "unix"{more_net}]
Protocols = ["tcp", "udp", "unix"]
Connect = ["tcp:443"]
SocketOptions = ["tcp_nodelay"]
[Runtime]
Flags = ["proc"{more_runtime}]
[Filesystem]
Exec = ["{probes}/net_probe"]
[Misc]
Syscalls = ["ioctl", "setsockopt", "prlimit64", "setpriority", "sched_setaffinity", "sched_setscheduler",
            "sched_setparam", "ioprio_set", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
            "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "process_madvise"]
"""
#: The agent example's shape, with what ``run --log`` suggests for a tty program.
AGENT = """
Name = "net-agent"
Extends = ["base"]
[Networking]
Flags = ["dns", "outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:443"]
SocketOptions = ["tcp_nodelay"]
[Filesystem]
Exec = ["{probes}/net_probe"]
[Misc]
Syscalls = ["ioctl"]
"""
MSG_FASTOPEN = 0x20000000
TIOCSTI, TIOCLINUX, TIOCGWINSZ = 0x5412, 0x541C, 0x5413
UPPER = 1 << 32


@pytest.fixture
def policies(arena: Path, probes: dict[str, Path]) -> dict[str, Path]:
    where = probes["net_probe"].parent
    return {
        "wide": policy_file(arena, WIDE.format(probes=where, more_net="", more_runtime=""), "wide.toml"),
        "lifted": policy_file(arena, WIDE.format(probes=where, more_net=', "fastopen", "abstract-unix-outside"', more_runtime=', "signal-outside"'), "lifted.toml"),
        "agent": policy_file(arena, AGENT.format(probes=where), "agent.toml"),
    }


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on a port no policy here allows (ephemeral, so parallel runs do not collide)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def _outsider(user: str) -> subprocess.Popen[bytes]:
    """A process outside the sandbox, of the attacker's own uid. Root's has
    no capabilities either: the kernel already refuses a capability-less
    caller to renice a process holding more capabilities than it has, and
    that must not be what answers here."""
    prefix = as_user(user) or ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
    return subprocess.Popen([*prefix, "sleep", "300"])


# -- class 1: other TCP flavours ----------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("family", "type_", "proto", "want"),
    [
        (2, 1, 0, "ok"), (2, 1, 6, "ok"), (10, 1, 6, "ok"), (2, 2, 17, "ok"),  # tcp, udp as named
        (2, 1, 262, "errno=EPERM"), (10, 1, 262, "errno=EPERM"),  # MPTCP
        (2, 2, 136, "errno=EPERM"), (10, 2, 136, "errno=EPERM"),  # UDP-Lite
        (2, 1, 132, "errno=EPERM"), (2, 5, 132, "errno=EPERM"),  # SCTP
        (2, 2, 1, "errno=EPERM"),  # ICMP rides on udp's (inet, dgram)
        (2, 1, UPPER | 6, "errno=EPERM"),  # upper bits on the protocol
        (2, 3, 1, "errno=EPERM"), (17, 3, 0x300, "errno=EPERM"), (16, 3, 0, "errno=EPERM"), (40, 1, 0, "errno=EPERM"),  # raw, packet, netlink, vsock
    ],
)  # fmt: skip
def test_socket_protocols(confined: Confined, policies: dict[str, Path], user: str, family: int, type_: int, proto: int, want: str) -> None:
    got = confined(policies["wide"], "net_probe", "socket", str(family), str(type_), hex(proto), user=user)
    assert got.answer == want, got


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("attack", ["connect", "bind"])
def test_mptcp_cannot_reach_a_denied_port(confined: Confined, policies: dict[str, Path], listener: int, user: str, attack: str) -> None:
    assert confined(policies["wide"], "net_probe", attack, "0", str(listener), user=user).answer in ("errno=EACCES",)
    got = confined(policies["wide"], "net_probe", attack, "262", str(listener), user=user)
    assert got.answer == "errno=EPERM", got


@pytest.mark.parametrize("user", USERS)
def test_mptcp_named_is_reported_not_enforced(confined: Confined, arena: Path, probes: dict[str, Path], listener: int, user: str) -> None:
    policy = policy_file(arena, AGENT.format(probes=probes["net_probe"].parent).replace('Protocols = ["tcp"]', 'Protocols = ["tcp", "mptcp"]'))
    got = confined(policy, "net_probe", "connect", "262", str(listener), user=user)
    assert got.answer == "ok", got  # named: allowed, and Landlock cannot see its ports...
    dry = subprocess.run([sys.executable, "-I", "-m", "corral.cli", "run", "--dry-run", str(policy)], capture_output=True, text=True, check=True)
    assert "ports of mptcp sockets (Networking.Protocols): Landlock's port rules see TCP only" in dry.stdout  # ...which run says


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("attack", ["fastopen-sendto", "fastopen-sendmsg", "fastopen-sendmmsg", "fastopen-connect"])
def test_tcp_fast_open_cannot_reach_a_denied_port(confined: Confined, policies: dict[str, Path], listener: int, user: str, attack: str) -> None:
    refused = confined(policies["wide"], "net_probe", attack, str(listener), user=user)
    assert refused.answer == "errno=EPERM", refused
    if attack != "fastopen-connect":  # the option defers connect(), which Landlock still sees
        lifted = confined(policies["lifted"], "net_probe", attack, str(listener), user=user)
        assert lifted.answer == "ok", lifted  # the bypass is real: Landlock's connect rule does not see it


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("args", "want"),
    [
        (("sendto", hex(MSG_FASTOPEN)), "errno=EPERM"), (("sendto", hex(MSG_FASTOPEN | UPPER)), "errno=EPERM"), (("sendto", "0"), "errno=EBADF"),
        (("sendmsg", hex(MSG_FASTOPEN)), "errno=EPERM"), (("sendmmsg", hex(MSG_FASTOPEN)), "errno=EPERM"),
        (("setsockopt", "6", "30"), "errno=EPERM"), (("setsockopt", hex(UPPER | 6), "30"), "errno=EPERM"),
        (("setsockopt", "6", hex(UPPER | 30)), "errno=EPERM"), (("setsockopt", "6", "1"), "errno=EBADF"),
    ],
)  # fmt: skip
def test_fast_open_forms_with_upper_bits(confined: Confined, policies: dict[str, Path], user: str, args: tuple[str, ...], want: str) -> None:
    """On fd -1: EBADF means the call passed the filter, EPERM that it did not."""
    got = confined(policies["wide"], "net_probe", "syscall-badfd", *args, user=user)
    assert got.answer == want, got


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("policy", "level", "optname", "want"),
    [
        ("agent", 6, 1, "ok"), ("agent", UPPER | 6, 1, "errno=EPERM"), ("agent", 6, UPPER | 1, "errno=EPERM"),
        ("agent", 1, 2, "errno=EPERM"), ("agent", UPPER | 1, 2, "errno=EPERM"),
        ("wide", 6, 1, "ok"), ("wide", 6, 30, "errno=EPERM"), ("wide", UPPER | 6, 30, "errno=EPERM"),
    ],
)  # fmt: skip
def test_setsockopt_aliasing(confined: Confined, policies: dict[str, Path], user: str, policy: str, level: int, optname: int, want: str) -> None:
    got = confined(policies[policy], "net_probe", "setsockopt", hex(level), hex(optname), user=user)
    assert got.answer == want, got


# -- class 2: processes outside -------------------------------------------------

SIGNALS = ["kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"]
CHANGES = ["prlimit", "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "ioprio_set"]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("attack", SIGNALS + CHANGES)
def test_outside_process_is_out_of_reach(confined: Confined, policies: dict[str, Path], user: str, attack: str) -> None:
    target = _outsider(user)
    try:
        refused = confined(policies["wide"], "net_probe", attack, str(target.pid), "0", user=user)
        lifted = confined(policies["lifted"], "net_probe", attack, str(target.pid), "0", user=user)
    finally:
        target.kill()
        target.wait()
    assert refused.answer == "errno=EPERM", refused
    assert lifted.answer == "ok", lifted  # flag signal-outside: the same attack works, so the refusal is real


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("attack", "want"),
    [("process_madvise", "errno=EACCES"), ("pidfd_getfd", "errno=EPERM"), ("kcmp", "errno=EPERM"), ("ptrace-attach", "errno=EPERM"), ("process_vm_readv", "errno=EPERM")],
)
def test_inspecting_an_outside_process_is_refused(confined: Confined, policies: dict[str, Path], user: str, attack: str, want: str) -> None:
    target = _outsider(user)
    try:
        for policy in ("wide", "lifted"):  # Landlock's ptrace restriction holds even with the flag
            got = confined(policies[policy], "net_probe", attack, str(target.pid), user=user)
            assert got.answer == want, (policy, got)
    finally:
        target.kill()
        target.wait()


#: Calls that take a pid, with each form that names the caller: pid 0 means
#: "myself" for these three; tgkill and rt_tgsigqueueinfo take a thread
#: group id, which has no 0 form (the kernel answers EINVAL to 0).
_SELF_FORMS = [(attack, pid) for attack in ("prlimit", "setpriority", "sched_setaffinity") for pid in ("0", "self")] + [
    ("tgkill", "self"), ("rt_tgsigqueueinfo", "self"),
]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("attack", "pid"), _SELF_FORMS)
def test_the_program_may_still_act_on_itself(confined: Confined, policies: dict[str, Path], user: str, attack: str, pid: str) -> None:
    """On itself as pid 0; its pid written out only where Landlock's signal
    scope decides (signals): the filter cannot tell a pid that later names
    another process (test_redteam3_pids.py)."""
    got = confined(policies["wide"], "net_probe", attack, pid, "0", user=user)
    want = "errno=EPERM" if pid == "self" and attack not in ("tgkill", "rt_tgsigqueueinfo") else "ok"
    assert got.answer == want, got


@pytest.mark.parametrize("user", USERS)
def test_abstract_unix_socket_outside_is_out_of_reach(confined: Confined, policies: dict[str, Path], user: str) -> None:
    name = f"corral-net-{secrets.token_hex(6)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(4)
    try:
        refused = confined(policies["wide"], "net_probe", "abstract-connect", name, user=user)
        lifted = confined(policies["lifted"], "net_probe", "abstract-connect", name, user=user)
    finally:
        server.close()
    assert refused.answer == "errno=EPERM", refused
    assert lifted.answer == "ok", lifted


# -- class 8: the terminal --------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("request_", "want"),
    [(TIOCSTI, "errno=EPERM"), (TIOCSTI | UPPER, "errno=EPERM"), (TIOCLINUX, "errno=EPERM"), (TIOCLINUX | 0xFF00000000, "errno=EPERM"), (TIOCGWINSZ, "errno=EBADF")],
)
@pytest.mark.parametrize("policy", ["agent", "wide", "lifted"])
def test_terminal_ioctls_refused_whatever_is_allowed(confined: Confined, policies: dict[str, Path], user: str, request_: int, want: str, policy: str) -> None:
    got = confined(policies[policy], "net_probe", "syscall-badfd", "ioctl", hex(request_), user=user)
    assert got.answer == want, got


def _on_a_terminal(cmd: list[str]) -> tuple[str, bytes]:
    """Run ``cmd`` with a fresh pty as its controlling terminal; return its
    answer and what reached the terminal's input queue."""
    master, slave = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.run(cmd, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=take_terminal, timeout=60)
        os.set_blocking(slave, False)
        try:
            queued = os.read(slave, 1024)
        except BlockingIOError:
            queued = b""
    finally:
        os.close(master)
        os.close(slave)
    tokens = proc.stdout.decode().split()
    return (tokens[-1] if tokens else f"exit={proc.returncode}:{proc.stderr.decode()}"), queued


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("log", [False, True])
def test_tiocsti_cannot_type_into_the_terminal(policies: dict[str, Path], probes: dict[str, Path], user: str, log: bool) -> None:
    prefix = NOBODY if user == "nobody" else []
    as_user(user)
    bare, typed = _on_a_terminal([*prefix, str(probes["net_probe"]), "tiocsti", "id\n"])
    assert (bare, typed) == ("ok", b"id\n")  # unconfined, the attack types into the terminal
    run = [*prefix, sys.executable, "-I", "-m", "corral.cli", "run", "-q", *(["--log"] if log else []), str(policies["agent"]), "--"]
    confined_answer, typed = _on_a_terminal([*run, str(probes["net_probe"]), "tiocsti", "id\n"])
    assert (confined_answer, typed) == ("errno=EPERM", b"")


# -- the classics that hold and must keep holding -----------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("attack", "args", "want"),
    [
        ("int80", (), "signal=31"),  # i386 ABI: SIGSYS (libseccomp's bad-arch action kills)
        ("x32", (), "signal=31"),
        ("io_uring", (), "errno=EPERM"),
        ("openat2", ("/etc/shadow",), "errno=ENOSYS"),  # flags in memory: answered ENOSYS, glibc falls back
        ("clone3-userns", (), "errno=ENOSYS"),
        ("clone-userns", (), "errno=EPERM"),
        ("unshare-userns", (), "errno=EPERM"),
    ],
)
def test_classics(confined: Confined, policies: dict[str, Path], user: str, attack: str, args: tuple[str, ...], want: str) -> None:
    got = confined(policies["wide"], "net_probe", attack, *args, user=user)
    assert got.answer == want, got


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("args", "want"), [(("ioctl", hex(TIOCSTI)), "errno=EPERM"), (("ioctl", hex(TIOCLINUX | UPPER)), "errno=EPERM"), (("sendto", hex(MSG_FASTOPEN)), "errno=EPERM"), (("ioctl", hex(TIOCGWINSZ)), "errno=EBADF")])
def test_learning_mode_asks_about_the_rest_but_keeps_the_guards(confined: Confined, policies: dict[str, Path], arena: Path, user: str, args: tuple[str, ...], want: str) -> None:
    """Under --log a call outside the policy is let through and recorded;
    what a guard refuses is not, though nothing in the policy allows it."""
    policy = policy_file(arena, policies["agent"].read_text().replace('Syscalls = ["ioctl"]', "Syscalls = []"), "no-ioctl.toml")
    got = confined(policy, "net_probe", "syscall-badfd", *args, user=user, run_args=["--log"])
    assert got.answer == want, got
    if want == "errno=EPERM":
        assert "refused by guard" in got.stderr
