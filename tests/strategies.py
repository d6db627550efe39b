"""Hypothesis strategies for policies: shared by the law tests."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from corral.policy import catalog
from corral.policy.model import CATEGORIES

FLAGS = catalog.flags()
FLAGS_BY_CATEGORY = {c: sorted(n for n, f in FLAGS.items() if f.category == c) for c in CATEGORIES}
SYSCALL_POOL = ["getpid", "getppid", "read", "write", "openat", "socket", "setsockopt", "ptrace", "mount", "clone", "execve", "kill", "mmap", "unshare"]
CAPS = sorted(catalog.capabilities())
PATHS = ["/etc/**", "/etc/ssl/**", "/tmp/**", "/tmp/", "/var/tmp/**", "/run/app/**", "/run/app/{,**}", "/usr/lib/**", "/srv/*.txt", "/home/[^.]*", "/etc/passwd", "/dev/null"]
PROTOCOLS = sorted(catalog.protocols())


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


@st.composite
def policies(draw: st.DrawFn) -> str:
    """A policy text mixing allows and denies of every kind."""
    sections: dict[str, dict[str, list[str]]] = {c: {} for c in CATEGORIES}
    for category, names in FLAGS_BY_CATEGORY.items():
        sections[category]["Flags"] = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
        sections[category]["DenyFlags"] = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
    fs = sections["Filesystem"]
    for key in ("ReadOnly", "Writable", "Exec", "Deny", "LogOnWrite"):
        fs[key] = draw(st.lists(st.sampled_from(PATHS), unique=True, max_size=3))
    # Random Writable and Exec lists overlap (W^X, E022, tested on its own in
    # tests/test_write_exec.py): the laws are about everything else.
    fs["AllowWriteExec"] = ["/**"]
    net = sections["Networking"]
    net["Protocols"] = draw(st.lists(st.sampled_from(PROTOCOLS), unique=True, min_size=1, max_size=3))
    net["Connect"] = draw(st.lists(st.sampled_from(["tcp:443", "tcp:80", "tcp:*", "udp:53", "tcp:10.0.0.0/8:5432", "tcp:[::1]:8080"]), unique=True, max_size=3))
    net["Bind"] = draw(st.lists(st.sampled_from(["tcp:8080", "udp:5353"]), unique=True, max_size=1))
    net["SocketOptions"] = draw(st.lists(st.sampled_from(["tcp_nodelay", "so_keepalive", "ip_tos", "so_debug"]), unique=True, max_size=3))
    user = sections["User"]
    user["Capabilities"] = draw(st.lists(st.sampled_from(CAPS), unique=True, max_size=3))
    user["DenyCapabilities"] = draw(st.lists(st.sampled_from(CAPS), unique=True, max_size=3))
    misc = sections["Misc"]
    misc["Syscalls"] = draw(st.lists(st.sampled_from(SYSCALL_POOL), unique=True, max_size=4))
    misc["DenySyscalls"] = draw(st.lists(st.sampled_from(SYSCALL_POOL), unique=True, max_size=3))
    lines = ['Name = "law"']
    for category, keys in sections.items():
        lines.append(f"[{category}]")
        lines += [f"{k} = {_toml_list(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"
