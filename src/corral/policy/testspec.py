"""The probes a policy's [[Test]] entries may name, and their parameters.

Kept apart from ``sandbox.probes`` (which runs them) so that loading a
policy does not import the sandbox machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Families and types the ``socket`` probe takes.
FAMILIES = ("inet", "inet6", "unix", "netlink", "packet")
TYPES = ("stream", "dgram", "raw", "seqpacket")


@dataclass(frozen=True)
class ProbeKind:
    name: str
    params: tuple[str, ...]
    doc: str


PROBES: dict[str, ProbeKind] = {
    p.name: p
    for p in (
        ProbeKind("read", ("Path",), "open a file for reading and read a byte"),
        ProbeKind("list", ("Path",), "open a directory and list it"),
        ProbeKind("write", ("Path",), "open a file for writing (creating it if missing) and write a byte"),
        ProbeKind("create", ("Path",), "create a new file (and remove it again)"),
        ProbeKind("mkdir", ("Path",), "create a directory (and remove it again)"),
        ProbeKind("exec", ("Path",), "execute a program (with no arguments)"),
        ProbeKind("connect", ("Port",), "connect to a TCP port on 127.0.0.1 (refused still means allowed)"),
        ProbeKind("bind", ("Port",), "bind a TCP socket to a port on 127.0.0.1"),
        ProbeKind("socket", ("Family", "Type"), "create a socket of a family (inet, inet6, unix, netlink, packet) and type"),
        ProbeKind("raw-socket", (), "open a raw ICMP socket"),
        ProbeKind("setsockopt", ("Option",), "set a socket option (by name) on a TCP socket"),
        ProbeKind("ptrace", (), "ask to be traced (PTRACE_TRACEME)"),
        ProbeKind("mount", (), "mount a tmpfs (on a path that does not exist: nothing is mounted)"),
        ProbeKind("setuid", (), "change user ID to nobody (65534)"),
        ProbeKind("userns", (), "create a user namespace"),
        ProbeKind("kill", (), "reach the parent process: signal 0 by kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo and pidfd_send_signal, and prlimit64 (denied only if every one is)"),
    )
}

