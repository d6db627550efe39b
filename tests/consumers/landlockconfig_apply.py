"""A strict landlockconfig consumer: apply a landlockconfig JSON file to
itself with the raw Landlock system calls, then exec a command.

Written for the tests from landlockconfig's format (schema/landlockconfig.json
and src/parser.rs of landlock-lsm/landlockconfig), independently of corral's
own Landlock code, so a document corral writes is checked by something that
is not corral. Strict where landlockconfig is lenient: any failing
``landlock_add_rule`` (EINVAL for directory rights on a file, above all)
exits 3 naming the rule. A path missing on this host is skipped and named on
stderr, as landlockconfig does. Rights newer than the running kernel are
left out of the handled set (best effort for the *ruleset*, never for rules).

usage: python3 -I landlockconfig_apply.py FILE.json -- COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys

_NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}[platform.machine()]
FS = ["execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file", "make_char", "make_dir", "make_reg",
      "make_sock", "make_fifo", "make_block", "make_sym", "refer", "truncate", "ioctl_dev"]  # fmt: skip
FS_SINCE = {"refer": 2, "truncate": 3, "ioctl_dev": 5}
NET = ["bind_tcp", "connect_tcp"]
SCOPE = ["abstract_unix_socket", "signal"]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


class NetPort(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def fail(message: str, code: int = 3) -> None:
    print(f"landlockconfig_apply: {message}", file=sys.stderr)
    sys.exit(code)


def bits(names: list[str], table: list[str], abi: int, since: dict[str, int]) -> int:
    out = 0
    for name in names:
        if name.startswith("abi."):
            fail(f"abi groups are not used by corral: {name}", 2)
        if name not in table:
            fail(f"unknown right {name!r}", 2)
        if since.get(name, 1) <= abi:
            out |= 1 << table.index(name)
    return out


def untemplate(text: str) -> str:
    """landlockconfig's template strings: ``$$`` is ``$``; a ``${`` variable is refused here."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            fail(f"variable in path {text!r}", 2)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") != 1:
        fail("usage: landlockconfig_apply.py FILE.json -- COMMAND [ARG...]", 2)
    doc = json.load(open(argv[0]))
    create, add, restrict = _NR
    kabi = int(libc.syscall(create, None, 0, 1))
    if kabi < 1:
        fail("Landlock is not available", 4)
    net_abi, scope_abi = (4 if kabi >= 4 else 99), (6 if kabi >= 6 else 99)
    (ruleset,) = doc["ruleset"]
    handled_fs = bits(ruleset.get("handledAccessFs", []), FS, kabi, FS_SINCE)
    handled_net = bits(ruleset.get("handledAccessNet", []), NET, kabi, {n: net_abi for n in NET})
    scoped = bits(ruleset.get("scoped", []), SCOPE, kabi, {s: scope_abi for s in SCOPE})
    attr = RulesetAttr(handled_fs, handled_net, scoped)
    size = 24 if kabi >= 6 else 16 if kabi >= 4 else 8
    fd = int(libc.syscall(create, ctypes.byref(attr), size, 0))
    if fd < 0:
        fail(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    for rule in doc.get("pathBeneath", []):
        allowed = bits(rule["allowedAccess"], FS, kabi, FS_SINCE) & handled_fs
        for parent in rule["parent"]:
            path = untemplate(parent)
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                print(f"landlockconfig_apply: skipped missing {path}", file=sys.stderr)
                continue
            rattr = PathBeneath(allowed, pfd)
            if libc.syscall(add, fd, 1, ctypes.byref(rattr), 0) < 0:
                fail(f"landlock_add_rule({path}, {rule['allowedAccess']}): {os.strerror(ctypes.get_errno())}")
            os.close(pfd)
    for rule in doc.get("netPort", []):
        allowed = bits(rule["allowedAccess"], NET, kabi, {n: net_abi for n in NET}) & handled_net
        for port in rule["port"]:
            nattr = NetPort(allowed, port)
            if allowed and libc.syscall(add, fd, 2, ctypes.byref(nattr), 0) < 0:
                fail(f"landlock_add_rule(port {port}): {os.strerror(ctypes.get_errno())}")
    if libc.prctl(38, 1, 0, 0, 0) < 0:  # PR_SET_NO_NEW_PRIVS
        fail("prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.syscall(restrict, fd, 0) < 0:
        fail(f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    try:
        os.execvp(argv[2], argv[2:])
    except OSError as e:
        fail(f"exec {argv[2]}: {e.strerror}", 126)


if __name__ == "__main__":
    main(sys.argv[1:])
