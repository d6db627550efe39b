"""`corral import FORMAT FILE`: existing artifacts as corral policies, with
a report of everything that did not map.

* ``bane``: bane's TOML (Name, Filesystem.ReadOnlyPaths / LogOnWritePaths /
  WritablePaths / AllowExec / DenyExec, Capabilities.Allow, Network.Raw /
  Packet / Protocols). bane profiles start from ``file,`` (every path
  allowed) and subtract; corral policies allow only what they list, which
  the report says.
* ``docker-seccomp``: OCI seccomp JSON such as Docker's default. Plain
  allows become ``Misc.Syscalls``; argument-filtered and errno entries
  become a user-defined flag with ``Args`` / ``Errno``; entries conditional
  on capabilities or other architectures are reported, not guessed.
* ``apparmor``: a profile, through corral's reader: file rules become path
  lists by permission, capability and network rules map directly; exec
  transitions other than ``ix``, ``owner``, and signal/ptrace/unix/dbus/
  mount rules are reported.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field

from .._base import CorralError
from ..errors import Span, byte_span, text_position
from ..docshape import Node
from ..escape import comment, toml_string, visible
from ..policy import catalog, globs
from ..policy.model import CmpOp

FORMATS = ("bane", "docker-seccomp", "apparmor")
_NET = {("inet", "stream"): "tcp", ("inet6", "stream"): "tcp", ("inet", "dgram"): "udp", ("inet6", "dgram"): "udp",
        ("inet", "raw"): "raw", ("inet6", "raw"): "raw", ("unix", ""): "unix", ("unix", "stream"): "unix", ("unix", "dgram"): "unix",
        ("netlink", ""): "netlink", ("netlink", "raw"): "netlink", ("netlink", "dgram"): "netlink", ("packet", ""): "packet",
        ("packet", "raw"): "packet", ("packet", "dgram"): "packet"}  # fmt: skip


@dataclass
class Imported:
    name: str
    description: str
    keys: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    flag_tables: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    imply_flags: bool | None = None
    exec_profiles: dict[str, str] = field(default_factory=dict)

    def add(self, section: str, key: str, value: str) -> None:
        items = self.keys.setdefault((section, key), [])
        if value not in items:
            items.append(value)

    def render(self, source: str, fmt: str) -> str:
        self._say_write_exec()
        lines = [comment(f"Imported by `corral import {fmt}` from {source}."), "# What did not map is listed at the end: read it before relying on this policy."]
        lines += [f"Name = {toml_string(self.name)}", f"Description = {toml_string(visible(self.description))}"]
        for section in ("Networking", "Filesystem", "Runtime", "User", "Misc"):
            keys = [(k, v) for (s, k), v in self.keys.items() if s == section and v]
            if not keys and not (section == "Misc" and self.imply_flags is not None):
                continue
            lines += ["", f"[{section}]"]
            if section == "Misc" and self.imply_flags is not None:
                lines.append(f"ImplyFlags = {str(self.imply_flags).lower()}")
            for key, values in keys:
                lines.append(f"{key} = [")
                lines += [f"  {toml_string(v)}," for v in values]
                lines.append("]")
            if section == "Filesystem" and self.exec_profiles:
                lines.append("ExecProfiles = { " + ", ".join(f"{toml_string(p)} = {toml_string(n)}" for p, n in self.exec_profiles.items()) + " }")
        lines += self.flag_tables
        if self.report:
            lines += ["", "# Did not map:"] + [comment(f"  - {r}") for r in self.report]
        return "\n".join(lines) + "\n"


    def _say_write_exec(self) -> None:
        """What the artifact let be both written and executed stays allowed,
        but in words (Filesystem.AllowWriteExec), and the report says so:
        without it the imported policy would not load (W^X, E022)."""
        from ..write_exec import reaching

        writable = self.keys.get(("Filesystem", "Writable"), [])
        for x in [*self.keys.get(("Filesystem", "Exec"), []), *self.exec_profiles]:
            w = next((w for w in writable if reaching(w, x)), None)
            if w is not None and x not in self.keys.get(("Filesystem", "AllowWriteExec"), []):
                self.add("Filesystem", "AllowWriteExec", x)
                self.report.append(f"{x} is executable and {w} makes it writable (W^X): kept, in AllowWriteExec; remove both if the program does not need it")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text).strip("-.")[:128].strip("-.") or "imported"  # a valid policy Name


def _path(imp: Imported, path: str) -> str | None:
    try:
        globs.validate(path)
        return path
    except globs.GlobError as exc:
        imp.report.append(f"path {path!r} skipped: {exc.message}")
        return None


def _parse(text: str, source: str, what: str) -> Node:
    """The document as a ``Node``; invalid or absurdly nested input is a
    located error, never a traceback."""
    try:
        data = tomllib.loads(text) if what == "TOML" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            message, line, col = exc.msg, exc.lineno, exc.colno
        else:
            message, line, col = text_position(str(exc), text)
        where = Span(source, line, col) if line else source
        raise CorralError(f"invalid {what}: {message}", code="F002", hint="the file must be the format named on the command line", span=where) from None
    except RecursionError:
        raise CorralError(f"invalid {what}: nested too deeply for Python's parser", code="F002", hint="the file must be the format named on the command line", span=source) from None
    return Node(data, source)


def from_bane(text: str, source: str) -> Imported:
    doc = _parse(text, source, "TOML")
    bane_name = doc.get("Name", "bane").text()
    imp = Imported(_safe_name(bane_name), f"Imported from bane profile {visible(bane_name)}")
    fs = doc.get("Filesystem", {})
    for bane_key, key in (("ReadOnlyPaths", "ReadOnly"), ("WritablePaths", "Writable"), ("AllowExec", "Exec"), ("DenyExec", "Deny"), ("LogOnWritePaths", "LogOnWrite")):
        for p in fs.get(bane_key).texts():
            if (q := _path(imp, p)) is not None:
                imp.add("Filesystem", key, q)
    imp.report.append("bane profiles start from `file,` (every path allowed) and subtract; this policy allows only the paths listed: add what the program reads and writes")
    if fs.get("ReadOnlyPaths").texts():
        imp.report.append("bane's ReadOnlyPaths deny writes to otherwise allowed paths; here they are plain read-only grants")
    if fs.get("DenyExec").texts():
        imp.report.append("DenyExec denies execution; corral's Deny denies every access to those paths")
    for cap in doc.get("Capabilities", {}).get("Allow").texts():
        name = cap.lower().removeprefix("cap_")
        if name in catalog.capabilities():
            imp.add("User", "Capabilities", name)
        else:
            imp.report.append(f"capability {cap!r} unknown")
    net = doc.get("Network", {})
    protocols = net.get("Protocols").texts()
    for proto in protocols:
        if proto in catalog.protocols():
            imp.add("Networking", "Protocols", proto)
        else:
            imp.report.append(f"protocol {proto!r} unknown")
    raw, packet = net.get("Raw").flag(), net.get("Packet").flag()
    if raw:
        imp.add("Networking", "Protocols", "raw")
    if packet:
        imp.add("Networking", "Protocols", "packet")
    if protocols or raw or packet:
        imp.add("Networking", "Flags", "outgoing")
        imp.add("Networking", "Flags", "incoming")
        imp.report.append("bane's network rules have no direction: both the outgoing and incoming flags are set; name TCP ports in Connect/Bind")
    known = {"Name", "Filesystem", "Capabilities", "Network", "ImportsStatement", "InnerStatement"}
    imp.report += [f"key {k!r} not understood" for k in doc.keys() if k not in known]
    imp.report.append("bane profiles filter no system calls: add flags ([Runtime] stdio, malloc, ...) or Extends = [\"base\"]")
    return imp


_ERRNOS = {1: "EPERM", 38: "ENOSYS", 13: "EACCES", 22: "EINVAL"}


def _some(names: list[str]) -> str:
    return f"{', '.join(names[:4])}{'...' if len(names) > 4 else ''}"


def from_docker_seccomp(text: str, source: str, arch: str = "x86_64") -> Imported:
    doc = _parse(text, source, "JSON")
    imp = Imported(_safe_name(_stem(source)), f"Imported from seccomp profile {visible(source)}")
    imp.imply_flags = False
    default = doc.get("defaultAction")
    if default.value not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"):
        imp.report.append(f"defaultAction {default.value!r}: corral's filters deny by default (EPERM); an allow-by-default profile does not map")
    args_flag: dict[str, list[str]] = {}
    errno_flag: dict[str, str] = {}
    docker_arch = {"x86_64": "amd64", "aarch64": "arm64"}[arch]
    for entry in doc.get("syscalls").items():
        all_names = entry.get("names").texts()
        inc, excl = entry.get("includes", {}), entry.get("excludes", {})
        if entry.get("includes").value is None:
            inc = Node({}, source, inc.where)
        if entry.get("excludes").value is None:
            excl = Node({}, source, excl.where)
        caps = inc.get("caps").texts()
        if caps:
            imp.report.append(f"{_some(all_names)}: allowed only with capabilities {caps}: not imported (add them with the capabilities)")
            continue
        inc_arches, excl_arches = inc.get("arches").texts(), excl.get("arches").texts()
        if inc_arches and docker_arch not in inc_arches or excl_arches and docker_arch in excl_arches:
            imp.report.append(f"{_some(all_names)}: conditional on architecture {inc_arches or excl_arches}: not imported for {arch}")
            continue
        if inc.get("minKernel").value:
            imp.report.append(f"{_some(all_names)}: allowed from kernel {inc.get('minKernel').text()!r} only: imported unconditionally")
        action = entry.get("action").text()
        names = [n for n in all_names if _known(imp, n)]
        args = list(entry.get("args").items())
        if action == "SCMP_ACT_ALLOW" and not args:
            for n in names:
                imp.add("Misc", "Syscalls", n)
        elif action == "SCMP_ACT_ALLOW":
            alt = []
            for a in args:
                cmp_op = CmpOp.from_oci(a.get("op").text())
                if cmp_op is None:
                    imp.report.append(f"{names}: operator {a.get('op').value!r} not supported")
                    break
                op = cmp_op.policy
                index, value = a.get("index").integer(0, 5), a.get("value").integer()
                if cmp_op is CmpOp.MASKED_EQ:
                    alt.append(f'{{ arg = {index}, op = "masked_eq", mask = {value}, value = {a.get("valueTwo", 0).integer()} }}')
                else:
                    alt.append(f'{{ arg = {index}, op = "{op}", value = {value} }}')
            else:
                for n in names:
                    args_flag.setdefault(n, []).append("[" + ", ".join(alt) + "]")
        elif action == "SCMP_ACT_ERRNO":
            errno_ret = entry.get("errnoRet", 1).integer()
            errno = _ERRNOS.get(errno_ret)
            if errno is None:
                imp.report.append(f"{names}: errno {errno_ret} not mapped")
                continue
            if errno != "EPERM":
                for n in names:
                    errno_flag[n] = errno
        else:
            imp.report.append(f"{names}: action {action!r} not supported (corral allows, or answers an errno)")
    if args_flag or errno_flag:
        imp.add("Misc", "Flags", "imported-filters")
        tables = ["", "[[Flag]]", 'Name = "imported-filters"', f"Description = {toml_string(visible('argument filters and errno answers from ' + _stem(source)))}"]
        if errno_flag:
            tables.append("Errno = { " + ", ".join(f'{n} = "{e}"' for n, e in sorted(errno_flag.items())) + " }")
        if args_flag:
            tables.append("[Flag.Args]")
            tables += [f"{n} = [{', '.join(alts)}]" for n, alts in sorted(args_flag.items())]
        imp.flag_tables = tables
    return imp


def _stem(source: str) -> str:
    import os

    return os.path.basename(source).split(".")[0]


def _known(imp: Imported, name: str) -> bool:
    from .. import _seccomp

    if _seccomp.is_known(name):
        return True
    version = _seccomp.libseccomp_version()
    imp.report.append(
        f"system call {name!r}: the installed libseccomp{f' ({version})' if version else ''} does not know it on x86_64 or aarch64, "
        "so no filter corral builds here can name it: skipped (a newer libseccomp may; then regenerate corral's table with `python -m corral._seccomp`)"
    )
    return False


def from_apparmor(path: str, profile_name: str | None = None) -> Imported:
    from .aaparse import parse_profile

    result = parse_profile(path)
    profiles = [p for top in result.profiles for p in top.all_profiles()]
    if profile_name:
        profiles = [p for p in profiles if p.name == profile_name]
    if not profiles:
        raise CorralError("no profile" + (f" named {profile_name!r}" if profile_name else "") + " in this file", code="A006", hint="--profile NAME picks one of the file's profiles", span=path)
    prof = profiles[0]
    imp = Imported(_safe_name(prof.name), f"Imported from AppArmor profile {prof.name}")
    imp.report += [f"{d.span}: {d.message}" for d in result.diagnostics]
    if len(profiles) > 1 and not profile_name:
        imp.report.append(f"{len(profiles) - 1} child profile(s)/hat(s) not imported: {', '.join(p.name for p in profiles[1:])}")
    for rule in prof.rules:
        where = f"{rule.span}"
        if rule.kind == "file" and rule.path:
            for p in result.expand(rule.path):
                if (q := _path(imp, p)) is None:
                    continue
                if rule.deny:
                    imp.add("Filesystem", "Deny", q)
                    continue
                if rule.audit and "w" in rule.perms:
                    imp.add("Filesystem", "LogOnWrite", q)
                if "w" in rule.perms or "a" in rule.perms:
                    imp.add("Filesystem", "Writable", q)
                    widened = "".join(p for p in "rk" if p not in rule.perms)
                    if widened:
                        imp.report.append(f"{where}: {q} was `{rule.perms}`; Writable also grants {' and '.join({'r': 'read', 'k': 'lock'}[p] for p in widened)}")
                if rule.exec_mode and rule.exec_mode.lower() in ("px", "pix") and rule.target and not globs.has_glob(q):
                    imp.exec_profiles[q] = rule.target
                elif rule.exec_mode:
                    imp.add("Filesystem", "Exec", q)
                    if rule.exec_mode not in ("ix", "mix"):
                        imp.report.append(f"{where}: exec mode {rule.exec_mode} became ix (corral runs programs under the same policy, or under a named profile with ExecProfiles)")
                elif "m" in rule.perms:
                    imp.add("Filesystem", "Libraries", q)
                elif "r" in rule.perms and "w" not in rule.perms:
                    imp.add("Filesystem", "ReadOnly", q)
            if rule.owner:
                imp.report.append(f"{where}: `owner` dropped (corral has no owner condition): {rule.text}")
            if "l" in rule.perms or "k" in rule.perms and "w" not in rule.perms:
                imp.report.append(f"{where}: link/lock permission on {rule.path} folded into Writable")
        elif rule.kind == "capability":
            for name in rule.args or ("ALL",):
                if name == "ALL":
                    imp.report.append(f"{where}: `capability,` (all) not imported: list the capabilities")
                    continue
                if name.lower() not in catalog.capabilities():  # never write a policy that fails to load
                    imp.report.append(f"{where}: capability {name!r} unknown: not imported")
                    continue
                imp.add("User", "DenyCapabilities" if rule.deny else "Capabilities", name.lower())
        elif rule.kind == "network":
            family = next((a for a in rule.args if a in ("inet", "inet6", "unix", "netlink", "packet")), "")
            sock = next((a for a in rule.args if a in ("stream", "dgram", "raw", "seqpacket")), "")
            sock = sock or {"tcp": "stream", "udp": "dgram"}.get(next((a for a in rule.args if a in ("tcp", "udp")), ""), "")
            protos = [_NET.get((family, sock))] if family else ["tcp", "udp"]
            for proto in protos:
                if proto is None or rule.deny:
                    imp.report.append(f"{where}: `{rule.text}` not mapped")
                    continue
                imp.add("Networking", "Protocols", proto)
                wider = [f"{f} {t}" for f, t in catalog.protocols()[proto].sockets if (f, t) != (family, sock)]
                if sock and wider:
                    imp.report.append(f"{where}: `{rule.text}` became protocol {proto}, which also allows {', '.join(wider)}")
        else:
            imp.report.append(f"{where}: `{rule.text}` not mapped ({rule.kind} rules have no corral equivalent yet)")
    imp.report.append("AppArmor profiles filter no system calls: add flags ([Runtime] stdio, malloc, ...) or Extends = [\"base\"] before running under seccomp")
    return imp


def import_file(fmt: str, path: str, profile: str | None = None) -> tuple[str, Imported]:
    if fmt not in FORMATS:
        raise CorralError(f"unknown format {fmt!r}", code="A004", hint=f"one of {', '.join(FORMATS)}")
    if fmt == "apparmor":
        imp = from_apparmor(path, profile)
    else:
        from ..fsutil import read_input

        data = read_input(path, f"name the {fmt} file to import")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorralError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", code="F002", hint="the file must be the format named on the command line", span=byte_span(path, data, exc.start)) from None
        imp = from_bane(text, path) if fmt == "bane" else from_docker_seccomp(text, path)
    return imp.render(path, fmt), imp
