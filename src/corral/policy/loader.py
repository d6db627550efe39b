"""Load a policy file: parse, locate, validate every key, resolve Extends.

Grammar (TOML)::

    Name = "..."                 # optional; defaults to the file's stem
    Description = "..."          # optional, one line
    Extends = ["base", "other.toml"]
    [Networking] / [Filesystem] / [Runtime] / [User] / [Misc]   # see schema.SECTIONS
    [[Flag]]                     # user-defined flags, see flagdefs

Every error found in a file is collected and raised together as one
``PolicyError`` whose diagnostics carry file, line and column.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import Diagnostic, DiagnosticCollector, PolicyError, Span, byte_span, text_position
from . import catalog, items, locate
from .flagdefs import parse_flag_table
from .items import ExecProfile
from .model import FlagDef, Item, Policy, TestCase
from .reader import Reader
from .schema import CATEGORIES, DENY_FLAGS, FLAGS, NEEDS, NET_PROTOCOLS, SECTIONS, TEST_KEYS, TOP, KeySpec
from .suggest import did_you_mean, dotted
from .testspec import FAMILIES, PROBES, TYPES

_TOML_HINTS = {
    "Unclosed array": "is a ',' missing after the previous item? Every array item but the last needs one",
    "Unclosed inline table": "is a ',' or a '}' missing? An inline table stays on one line",
    "Invalid value": "strings need double quotes, as in \"dns\"",
    "Expected newline or end of document after a statement": "one key = value per line; is a ',' missing or a string unquoted?",
    "Cannot overwrite a value": "this key is set twice; set it once",
    "Cannot declare": "this table is declared twice; declare it once",
    "Duplicate inline table key": "this key is set twice; set it once",
    "Cannot mutate immutable namespace": "an inline table { ... } is complete; add the key inside it",
    "Invalid statement": "a line is either [Section], [[Table]] or key = value",
}


def _toml_error(file: str, text: str, exc: tomllib.TOMLDecodeError) -> PolicyError:
    message, line, col = text_position(str(exc), text)
    hint = next((h for k, h in _TOML_HINTS.items() if message.startswith(k)), "see https://toml.io for the syntax")
    if message.startswith("Unclosed array") and line:
        previous = _previous_value(text, line, col)
        if previous:
            hint = f"is a ',' missing after {previous[1]} on line {previous[0]}? Every array item but the last needs one"
    span = Span(file, line, col)
    if line and message.startswith(_REDEFINED):
        twice = locate.redefinition(text, line, col)
        if twice is not None:
            (line, col, length), (first_line, first_col, first_length), relation = twice
            span, first = Span(file, line, col, length), Span(file, first_line, first_col)
            name, earlier = _source(text, line, col, length), _source(text, first_line, first_col, first_length)
            message, hint = {
                "same": (f"{name} is defined twice", f"first defined at {first}; define it once"),
                "implicit": (f"{name} is defined twice", f"already defined by {earlier} at {first}; define it once"),
                "inside": (f"{name} adds to {earlier}, which is complete", f"{earlier} is defined at {first}; put every key of a table in one place"),
                "array": (f"{name} is an array of tables", f"[[{earlier}]] at {first} made it one; write [[{earlier}]] here too"),
            }[relation]
    diag = Diagnostic(span, "E001", f"invalid TOML: {message}", hint)
    return PolicyError([diag], {file: text})


_REDEFINED = ("Cannot overwrite a value", "Cannot declare", "Duplicate inline table key", "Cannot mutate immutable namespace")


def _source(text: str, line: int, col: int, length: int) -> str:
    """The characters the user wrote at a position (a key, quotes and all)."""
    return text.split("\n")[line - 1][col - 1 : col - 1 + length]


def _previous_value(text: str, line: int, col: int) -> tuple[int, str] | None:
    """The last value written before ``line``:``col`` (skipping blanks and comments)."""
    lines = text.splitlines()
    if 0 < line <= len(lines):  # on the same line, before the error: the item just written
        m = re.search(r'("(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\s\[=,]+)\s*$', lines[line - 1][: col - 1])
        if m:
            return line, m.group(1)
    for number in range(line - 1, 0, -1):
        content = lines[number - 1]
        if '"' not in content and "'" not in content:
            content = content.split("#", 1)[0]
        content = content.strip()
        if content:
            return number, content.rstrip(",")
    return None


#: Arrays and inline tables nest at most this deep: TOML's parser and
#: corral's locator recurse per level (Python's stack ends near 330), and no
#: policy needs more than four.
MAX_NESTING = 32
#: Policies one Extends chain may pass through (each level is a recursion).
MAX_EXTENDS_DEPTH = 16
_TOKENS = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]', re.S)


def _too_deep(file: str, text: str) -> PolicyError | None:
    """A located error at the first bracket past ``MAX_NESTING`` levels."""
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, m.start()) + 1
                col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                diag = Diagnostic(Span(file, line, col), "E001", f"arrays and tables nested more than {MAX_NESTING} deep", f"the limit is {MAX_NESTING} levels; a policy needs at most four")
                return PolicyError([diag], {file: text})
        elif c in "]}":
            depth = max(0, depth - 1)
    return None


def _parse(file: str, text: str, collector: DiagnosticCollector) -> Reader:
    collector.add_source(file, text)
    deep = _too_deep(file, text)
    if deep is not None:
        raise deep
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(file, text, exc) from None
    except RecursionError:  # _too_deep should have caught it first
        raise PolicyError([Diagnostic(Span(file), "E001", "nested too deeply for the TOML parser", f"the limit is {MAX_NESTING} levels")]) from None
    return Reader(file, text, data, collector)


def load_policy(path: str | Path) -> Policy:
    """Load and fully validate the policy at ``path`` (and what it extends)."""
    return _Loader().load_file(Path(path), stack=())


def load_policy_text(text: str, file: str = "<policy>", base_dir: Path | None = None) -> Policy:
    """Load a policy from a string; ``file`` names it in errors, relative
    Extends resolve against ``base_dir`` (default: the current directory)."""
    return _Loader().load_text(text, file, base_dir=base_dir or Path.cwd(), stack=())


class _Loader:
    def __init__(self) -> None:
        self.collector = DiagnosticCollector()
        #: where a file of this load set a bool key to true (for keys that need another)
        self.set_true: dict[KeySpec[bool], Span] = {}

    def load_file(self, path: Path, stack: tuple[str, ...]) -> Policy:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyError([Diagnostic(Span(str(path)), "E000", f"cannot read policy: {exc.strerror}", "check the path")]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = byte_span(str(path), data, exc.start)
            raise PolicyError([Diagnostic(where, "E000", f"cannot read policy: not UTF-8 text (byte 0x{data[exc.start]:02x})", "a policy is UTF-8 text")]) from None
        return self.load_text(text, str(path), base_dir=path.parent, stack=stack)

    def load_text(self, text: str, file: str, base_dir: Path, stack: tuple[str, ...]) -> Policy:
        reader = _parse(file, text, self.collector)
        policy = self._read(reader, base_dir, stack + (file,))
        if not stack:  # the outermost file: check what needs the merged picture
            self._check_flag_names(policy)
            self._check_protocols(policy)
            self._check_needs(policy)
            self.collector.raise_if_any()
            policy.sources = self.collector.sources
        return policy

    # -- one file ----------------------------------------------------------
    def _read(self, r: Reader, base_dir: Path, stack: tuple[str, ...]) -> Policy:
        data = r.data
        r.check_keys((), data, TOP, "the policy's top level")
        top = {k.name: k for k in TOP}
        good = {k: v for k, v in data.items() if k in top and r.typed((k,), v, top[k])}
        name = good.get("Name") or re.sub(r"[^A-Za-z0-9._-]", "-", Path(r.file).stem) or "policy"
        if "Name" in good:
            r.item_ok(("Name",), good["Name"], items.NAME)
        description = good.get("Description", "")
        if description:
            r.item_ok(("Description",), description, items.TEXT)
        policy = Policy(name=name, description=description, path=r.file, span=Span(r.file, 1, 1))

        for i, target in enumerate(good.get("Extends", [])):
            parent = self._extend(r, ("Extends", i), target, base_dir, stack)
            if parent is not None:
                policy.extends.append(parent.path)
                for spec, values in parent.values.items():
                    policy.add(spec, values)
                policy.flags.update(parent.flags)
                policy.settings.update(parent.settings)

        for section in CATEGORIES:
            if section not in good:
                continue
            table = good[section]
            keys = SECTIONS[section]
            r.check_keys((section,), table, keys, f"[{section}]")
            specs: dict[str, KeySpec[Any]] = {k.key: k for k in keys}
            for key, value in table.items():
                found = specs.get(key)
                if found is None or not r.typed((section, key), value, found):
                    continue
                spec = found
                if spec.shape == "bool":
                    policy.settings[spec] = value
                    if value:
                        self.set_true.setdefault(spec, r.span((section, key), key=True))
                elif spec.shape == "map":
                    policy.add(spec, self._exec_profiles(r, (section, key), value))
                elif spec.shape == "strings" and spec.item is not None:
                    # flag names are checked once every [[Flag]] is known
                    policy.add(spec, r.items((section, key), value, spec.item))
                else:
                    from ..errors import InternalError

                    raise InternalError(f"{spec}: the loader cannot read a {spec.shape} key")

        policy.tests = [t for i, table in enumerate(good.get("Test", [])) if (t := self._test(r, ("Test", i), table)) is not None]

        for i, table in enumerate(good.get("Flag", [])):
            flag = self._user_flag(r, ("Flag", i), table)
            if flag is None:
                continue
            if flag.name in policy.flags and policy.flags[flag.name].span.file == r.file:
                r.error(("Flag", i, "Name"), "E014", f"flag '{flag.name}' is defined twice", f"the first definition is at {policy.flags[flag.name].span}")
            elif flag.name in catalog.flags():
                r.error(("Flag", i, "Name"), "E014", f"flag '{flag.name}' is already a built-in flag", "choose another name; `corral flags` lists the built-in ones")
            else:
                policy.flags[flag.name] = flag
        return policy

    def _exec_profiles(self, r: Reader, path: tuple[str | int, ...], table: dict[str, Any]) -> list[Item[ExecProfile]]:
        """``{ "/usr/bin/helper" = "helper" }``: each program path with the
        profile it runs under."""
        out = []
        for program, profile in table.items():
            where = path + (program,)
            if not isinstance(profile, str):
                r.error(where, "E003", f"{dotted(where)} must name a profile (a string)", 'for example: "/usr/bin/helper" = "helper"')
                continue
            ok = r.item_ok(where, program, items.PATH) and r.item_ok(where, profile, items.NAME)
            if ok:
                out.append(Item(program, r.span(where, key=True), items.EXEC_PROFILE.entry(program, profile)))
        return out

    def _test(self, r: Reader, path: tuple[str | int, ...], table: dict[str, Any]) -> TestCase | None:
        """A [[Test]]: exactly one of Probe and Run, the probe's parameters, Expect."""
        before = len(self.collector.diagnostics)
        r.check_keys(path, table, TEST_KEYS, "[[Test]]")
        kinds = {k.name: k for k in TEST_KEYS}
        v = {k: val for k, val in table.items() if k in kinds and r.typed(path + (k,), val, kinds[k])}
        if ("Probe" in v) == ("Run" in v):
            r.error(path, "E016", "a [[Test]] needs exactly one of Probe and Run", 'for example: Probe = "write" with Path = "/tmp/x", or Run = ["cat", "/etc/shadow"]', key=True)
        if v.get("Expect") not in ("allow", "deny"):
            r.error(path + ("Expect",) if "Expect" in v else path, "E016", "a [[Test]] needs Expect = \"allow\" or \"deny\"", "Expect says what the kernel should answer", key="Expect" not in v)
        params: list[tuple[str, str | int]] = []
        if "Probe" in v:
            kind = PROBES.get(v["Probe"])
            if kind is None:
                r.error(path + ("Probe",), "E020", f"unknown probe '{v['Probe']}'", did_you_mean(v["Probe"], PROBES) or f"one of: {', '.join(PROBES)}")
            else:
                for name in kind.params:
                    if name not in v:
                        r.error(path, "E020", f"probe '{kind.name}' needs {name}", f"{kind.name}: {kind.doc}", key=True)
                        continue
                    params.append((name, v[name]))
                for name in ("Path", "Port", "Option", "Family", "Type"):
                    if name in v and name not in kind.params:
                        r.error(path + (name,), "E020", f"probe '{kind.name}' takes no {name}", f"{kind.name} takes: {', '.join(kind.params) or 'nothing'}", key=True)
                self._check_params(r, path, v)
        if "Run" in v and not v["Run"]:
            r.error(path + ("Run",), "E016", "Run needs a command", 'for example: Run = ["cat", "/etc/shadow"]')
        if len(self.collector.diagnostics) > before:
            return None
        return TestCase(v.get("Name", ""), v["Expect"], r.span(path, key=True), v.get("Probe", ""), tuple(params), tuple(v.get("Run", ())))

    def _check_params(self, r: Reader, path: tuple[str | int, ...], v: dict[str, Any]) -> None:
        if "Path" in v and (not v["Path"].startswith("/") or any(ord(c) < 0x20 for c in v["Path"])):
            r.error(path + ("Path",), "E021", f"probe path {v['Path']!r} must be an absolute path on one line", "for example: Path = \"/tmp/x\"")
        if "Port" in v and not 1 <= v["Port"] <= 65535:
            r.error(path + ("Port",), "E021", f"port {v['Port']} out of range", "ports run from 1 to 65535")
        if "Option" in v:
            r.item_ok(path + ("Option",), v["Option"], items.SOCKOPT)
        if "Family" in v and v["Family"] not in FAMILIES:
            r.error(path + ("Family",), "E021", f"unknown socket family '{v['Family']}'", f"one of: {', '.join(FAMILIES)}")
        if "Type" in v and v["Type"] not in TYPES:
            r.error(path + ("Type",), "E021", f"unknown socket type '{v['Type']}'", f"one of: {', '.join(TYPES)}")

    def _user_flag(self, r: Reader, path: tuple[str | int, ...], table: dict[str, Any]) -> FlagDef | None:
        name = table.get("Name")
        if not isinstance(name, str):
            r.error(path, "E017", f"{dotted(path)} has no Name", "add Name = \"my-flag\"", key=True)
            return None
        if not r.item_ok(path + ("Name",), name, items.NAME):
            return None
        return parse_flag_table(r, path, table, name=name, category=None, builtin=False)

    def _extend(self, r: Reader, path: tuple[str | int, ...], target: str, base_dir: Path, stack: tuple[str, ...]) -> Policy | None:
        if len(stack) >= MAX_EXTENDS_DEPTH:
            r.error(path, "E010", f"Extends chain longer than {MAX_EXTENDS_DEPTH} policies: {' -> '.join(stack[:2])} -> ... -> {stack[-1]}", f"the limit is {MAX_EXTENDS_DEPTH}; extend a policy that already merges the others")
            return None
        if "\0" in target or len(target) > 4096:
            r.error(path, "E010", "an Extends entry names a template or a file: no NUL, at most 4096 characters", "write a template name or a path to a .toml file")
            return None
        is_file = "/" in target or target.endswith(".toml")
        if is_file:
            file = base_dir / target
            key = str(file)
            if key in stack or any(Path(s).resolve() == file.resolve() for s in stack if not s.startswith("<")):
                r.error(path, "E010", f"Extends cycle: {' -> '.join(stack)} -> {target}", "remove one of the Extends entries")
                return None
            try:
                found = file.is_file()
            except OSError:  # a name too long for the file system, say
                found = False
            if not found:
                r.error(path, "E010", f"extended policy '{target}' not found (looked for {file})", "paths are relative to the extending policy's directory")
                return None
            try:
                return self.load_file(file, stack)
            except PolicyError as exc:  # a TOML error in the parent: said at our Extends entry
                if any(d.span.file == key and d.code in ("E000", "E001") for d in exc.diagnostics):
                    # never show its lines: the file may not be a policy at all (/etc/shadow)
                    first = next(d for d in exc.diagnostics if d.span.file == key)
                    where = f" at line {first.span.line}, column {first.span.col}" if first.span.line else ""
                    r.error(path, "E010", f"extended file '{target}' is not a valid policy ({first.message}{where})", "Extends names corral policies (TOML); its lines are not shown, in case it is not one")
                    return None
                self.collector.diagnostics.extend(exc.diagnostics)
                self.collector.sources.update(exc.sources)
                return None
        text = catalog.template_text(target)
        if text is None:
            hint = did_you_mean(target, catalog.template_names()) or f"shipped templates: {', '.join(catalog.template_names())}; a file path needs a '/' or '.toml'"
            r.error(path, "E010", f"unknown template '{target}'", hint)
            return None
        label = f"<template {target}>"
        if label in stack:
            r.error(path, "E010", f"Extends cycle through template '{target}'", "remove the Extends entry")
            return None
        return self.load_text(text, label, base_dir=base_dir, stack=stack)

    # -- the merged policy ---------------------------------------------------
    def _check_flag_names(self, policy: Policy) -> None:
        known: dict[str, FlagDef] = {**catalog.flags(), **policy.flags}
        for section in CATEGORIES:
            for spec in (FLAGS[section], DENY_FLAGS[section]):
                key = spec.key
                for item in policy.get(spec):
                    flag = known.get(item.value)
                    if flag is None:
                        in_section = sorted(n for n, f in known.items() if f.category in (section, None))
                        hint = did_you_mean(item.value, in_section) or did_you_mean(item.value, known)
                        self.collector.add(item.span, "E004", f"unknown flag '{item.value}' in {section}.{key}", hint or f"`corral flags` lists the flags; [{section}] takes: {', '.join(in_section)}")
                    elif flag.category not in (None, section):
                        self.collector.add(item.span, "E012", f"flag '{item.value}' belongs in [{flag.category}], not [{section}]", f"move it to [{flag.category}] {key}")
        # resolve the merged policy's flag definitions
        used = {i.value for s in CATEGORIES for k in (FLAGS[s], DENY_FLAGS[s]) for i in policy.get(k)}
        policy.flags = {n: known[n] for n in sorted(used) if n in known}

    def _check_needs(self, policy: Policy) -> None:
        """A true setting that means nothing without the key it refines is
        an error, not a silent no-op: ALPNOnly without ALPN would say "only
        these protocols" and check none."""
        for setting, needed in NEEDS.items():
            if policy.setting(setting, False) and not policy.get(needed) and setting in self.set_true:
                self.collector.add(
                    self.set_true[setting], "E023", f"{setting.dotted} = true has no effect without {needed.dotted}",
                    f"add {needed.key} = [...] to [{needed.section}], or remove {setting.key}",
                )

    def _check_protocols(self, policy: Policy) -> None:
        protocols = bool(policy.get(NET_PROTOCOLS))
        for section in CATEGORIES:
            for item in policy.get(FLAGS[section]):
                flag = policy.flags.get(item.value)
                if flag is None or "socket" not in flag.syscalls:
                    continue
                if not protocols and not any(policy.flags[i.value].list("Protocols") for s in CATEGORIES for i in policy.get(FLAGS[s]) if i.value in policy.flags):
                    self.collector.add(item.span, "E015", f"flag '{item.value}' opens sockets, but the policy allows no protocol", "add Protocols = [\"tcp\"] (or udp, unix, ...) to [Networking]")
                    return
