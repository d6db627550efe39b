"""A reader for AppArmor profile text as distributions ship it.

Good enough to lint, explain, diff and import real profiles: ``include``
(``#include``, ``include if exists``, directories), ``@{VAR}`` with ``=``
and ``+=``, ``abi``, profiles with names, attachments and flags, child
profiles and hats, the ``audit``/``deny``/``allow``/``owner`` qualifiers,
file rules in both orders with exec modes and ``->`` targets, ``file,``,
and network, capability, signal, ptrace, unix, dbus, mount, umount,
remount, pivot_root, change_profile, rlimit, userns, io_uring and mqueue
rules. A construct it does not know is reported with its location and
skipped: never a crash, never a silent drop.

Statements are found by a small scanner: a rule ends at a ``,`` outside
quotes, parentheses and glob braces; a block opens at a ``{`` that stands
as its own word; ``include`` and variable lines end at the newline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Diagnostic, Span

DEFAULT_SEARCH = ("/etc/apparmor.d",)
_QUALIFIERS = ("audit", "deny", "allow", "owner", "quiet", "kill")
_KEYWORDS = {
    "capability", "network", "signal", "ptrace", "unix", "dbus", "mount", "umount", "remount", "pivot_root",
    "change_profile", "change_hat", "rlimit", "set", "file", "link", "userns", "io_uring", "mqueue", "all",
}  # fmt: skip
_PERMS = re.compile(r"^(?:[rwaklmixXuUpPcCd]+|\(?[rwaklmixXuUpPcCd, ]+\)?)$")
_EXEC_MODE = re.compile(r"(?:[pPcC]?[uU]?i?x|ix|[pPcC]ix|[pPcC]ux|[uU]x|[pPcC]x)")
_VAR_DEF = re.compile(r"^@\{(?P<name>[\w]+)\}\s*(?P<op>\+?=)\s*(?P<values>.*)$")
_INCLUDE = re.compile(r"^#?include\s+(?P<ifexists>if\s+exists\s+)?(?P<target><[^>]+>|\"[^\"]+\"|\S+)\s*$")
#: AppArmor's built-in variables where tunables do not define them.
BUILTIN_VARS = {"pid": ["[0-9]*"], "pids": ["[0-9]*"], "tid": ["[0-9]*"], "profile_name": ["*"], "exec_path": ["/**"]}


@dataclass
class AARule:
    kind: str  # file, network, capability, ... (the keyword), "file" for path rules
    text: str
    span: Span
    deny: bool = False
    audit: bool = False
    owner: bool = False
    path: str = ""
    perms: str = ""
    exec_mode: str = ""
    target: str = ""
    args: tuple[str, ...] = ()
    comment: str = ""


@dataclass
class AAProfile:
    name: str
    span: Span
    attachment: str = ""
    flags: tuple[str, ...] = ()
    hat: bool = False
    rules: list[AARule] = field(default_factory=list)
    children: list["AAProfile"] = field(default_factory=list)
    comments: list[tuple[str, Span]] = field(default_factory=list)

    def all_profiles(self) -> list["AAProfile"]:
        out = [self]
        for child in self.children:
            out += child.all_profiles()
        return out


@dataclass
class AAFile:
    path: str
    abi: str = ""
    profiles: list[AAProfile] = field(default_factory=list)
    variables: dict[str, list[str]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    comments: list[tuple[str, Span]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def expand(self, text: str, limit: int = 64) -> list[str]:
        """Replace @{VAR} references by each of their values."""
        out = [text]
        for _ in range(8):
            nxt: list[str] = []
            changed = False
            for item in out:
                m = re.search(r"@\{(\w+)\}", item)
                if m is None:
                    nxt.append(item)
                    continue
                changed = True
                values = self.variables.get(m.group(1)) or BUILTIN_VARS.get(m.group(1)) or ["*"]
                nxt += [item[: m.start()] + v + item[m.end() :] for v in values]
            out = nxt[:limit]
            if not changed:
                break
        return [re.sub(r"/+", "/", o) for o in out]


@dataclass
class _Stmt:
    kind: str  # rule | open | close | include | var
    text: str
    span: Span
    comment: str = ""


def _scan(text: str, file: str) -> tuple[list[_Stmt], list[tuple[str, Span]]]:
    """Split profile text into statements and comments."""
    stmts: list[_Stmt] = []
    comments: list[tuple[str, Span]] = []
    buf: list[str] = []
    start: Span | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        col = len(line) - len(line.lstrip()) + 1
        if not buf:
            if not stripped:
                continue
            if _INCLUDE.match(stripped) and (stripped.startswith("include") or stripped.startswith("#include")):
                stmts.append(_Stmt("include", stripped, Span(file, lineno, col, len(stripped))))
                continue
            if stripped.startswith("#"):
                comments.append((stripped.lstrip("#").strip(), Span(file, lineno, col, len(stripped))))
                continue
            if stripped.startswith("@{") and _VAR_DEF.match(stripped.split("#", 1)[0].strip()):
                stmts.append(_Stmt("var", stripped.split("#", 1)[0].strip(), Span(file, lineno, col, len(stripped))))
                continue
        quote = False
        paren = brace = 0
        i = 0
        while i < len(line):
            c = line[i]
            if quote:
                buf.append(c)
                if c == '"':
                    quote = False
                i += 1
                continue
            if c == '"':
                quote = True
            elif c == "#" and (i == 0 or line[i - 1].isspace()):
                comment = line[i + 1 :].strip()
                comments.append((comment, Span(file, lineno, i + 1, len(line) - i)))
                if stmts and stmts[-1].span.line == lineno:
                    stmts[-1].comment = comment
                break
            if start is None and not c.isspace():
                start = Span(file, lineno, i + 1)
            if c == "(":
                paren += 1
            elif c == ")":
                paren = max(0, paren - 1)
            elif c == "{" and (i > 0 and not line[i - 1].isspace()) and paren == 0:
                brace += 1
            elif c == "{" and paren == 0 and brace == 0:
                stmts.append(_Stmt("open", "".join(buf).strip(), start or Span(file, lineno, i + 1)))
                buf, start = [], None
                i += 1
                continue
            elif c == "}" and brace > 0:
                brace -= 1
            elif c == "}" and paren == 0:
                if "".join(buf).strip():
                    stmts.append(_Stmt("rule", "".join(buf).strip(), start or Span(file, lineno, i + 1)))
                stmts.append(_Stmt("close", "}", Span(file, lineno, i + 1)))
                buf, start = [], None
                i += 1
                continue
            elif c == "," and paren == 0 and brace == 0:
                stmts.append(_Stmt("rule", "".join(buf).strip(), start or Span(file, lineno, i + 1)))
                buf, start = [], None
                i += 1
                continue
            buf.append(c)
            i += 1
        if "".join(buf).strip():
            buf.append(" ")
        else:
            buf, start = [], None
    if "".join(buf).strip():
        stmts.append(_Stmt("rule", "".join(buf).strip(), start or Span(file, 1, 1)))
    return stmts, comments


def _span_len(span: Span, text: str) -> Span:
    return Span(span.file, span.line, span.col, max(1, len(text)))


class _Reader:
    def __init__(self, search: tuple[str, ...]) -> None:
        self.search = search
        self.result = AAFile("")
        self.seen: set[str] = set()

    def warn(self, span: Span, code: str, message: str, hint: str = "") -> None:
        self.result.diagnostics.append(Diagnostic(span, code, message, hint, "warning"))

    def include(self, stmt: _Stmt, current_dir: str, profile: AAProfile | None) -> None:
        m = _INCLUDE.match(stmt.text)
        assert m is not None
        target = m.group("target")
        optional = bool(m.group("ifexists"))
        if target.startswith("<"):
            candidates = [os.path.join(d, target[1:-1]) for d in self.search]
        else:
            name = target.strip('"')
            candidates = [name] if name.startswith("/") else [os.path.join(current_dir, name), *(os.path.join(d, name) for d in self.search)]
        found = next((c for c in candidates if os.path.exists(c)), None)
        if found is None:
            if not optional:
                self.warn(stmt.span, "A002", f"include {target} not found", f"looked in: {', '.join(self.search)}; use `include if exists` for optional files")
            return
        files = sorted(str(p) for p in Path(found).iterdir() if p.is_file() and not p.name.startswith(".")) if os.path.isdir(found) else [found]
        for f in files:
            real = os.path.realpath(f)
            if real in self.seen:
                continue  # AppArmor includes each file once per scope; we keep the first
            self.seen.add(real)
            self.read_file(f, profile)
            self.seen.discard(real)

    def read_file(self, path: str, profile: AAProfile | None) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            self.warn(Span(path), "A002", f"cannot read {path}: {exc.strerror}")
            return
        self.result.sources[path] = text
        stmts, comments = _scan(text, path)
        if profile is None:
            self.result.comments += comments
        else:
            profile.comments += comments
        stack: list[AAProfile] = [profile] if profile else []
        base_depth = len(stack)
        for stmt in stmts:
            current = stack[-1] if stack else None
            if stmt.kind == "include":
                self.include(stmt, os.path.dirname(path), current)
            elif stmt.kind == "var":
                self.variable(stmt)
            elif stmt.kind == "open":
                child = self.header(stmt, current)
                if current is None:
                    self.result.profiles.append(child)
                else:
                    current.children.append(child)
                stack.append(child)
            elif stmt.kind == "close":
                if len(stack) > base_depth:
                    stack.pop()
                else:
                    self.warn(stmt.span, "A003", "'}' closes no block", "check the braces above")
            else:
                self.rule(stmt, current)
        if len(stack) > base_depth:
            self.warn(Span(path, len(text.splitlines()), 1), "A003", f"profile '{stack[-1].name}' is not closed", "add '}'")

    def variable(self, stmt: _Stmt) -> None:
        m = _VAR_DEF.match(stmt.text)
        assert m is not None
        values = [v.strip('"') for v in re.findall(r'"[^"]*"|\S+', m.group("values"))]
        expanded: list[str] = []
        for v in values:
            expanded += self.result.expand(v)
        if m.group("op") == "+=":
            self.result.variables.setdefault(m.group("name"), []).extend(expanded)
        else:
            self.result.variables[m.group("name")] = expanded

    def header(self, stmt: _Stmt, parent: AAProfile | None) -> AAProfile:
        text = stmt.text
        flags: tuple[str, ...] = ()
        m = re.search(r"\bflags\s*=\s*\(([^)]*)\)", text)
        if m:
            flags = tuple(f.strip() for f in m.group(1).replace(",", " ").split())
            text = (text[: m.start()] + text[m.end() :]).strip()
        words = re.findall(r'"[^"]*"|\S+', text)
        hat = False
        if words[:1] == ["profile"]:
            name = words[1] if len(words) > 1 else ""
            attachment = words[2] if len(words) > 2 else ""
        elif words[:1] == ["hat"]:
            name, attachment, hat = (words[1] if len(words) > 1 else ""), "", True
        elif words and words[0].startswith("^"):
            name, attachment, hat = words[0][1:], "", True
        elif words:
            name, attachment = words[0], words[0]
        else:
            name, attachment = "", ""
        if not name:
            self.warn(stmt.span, "A004", "a block without a profile name", "write `profile NAME {` or `/path/to/program {`")
        return AAProfile(name.strip('"'), stmt.span, attachment.strip('"'), flags, hat)

    def rule(self, stmt: _Stmt, profile: AAProfile | None) -> None:
        text = stmt.text
        words = re.findall(r'"[^"]*"|\S+', text)
        if words[:1] == ["abi"]:
            if stmt.span.file == self.result.path:  # an included file's abi is not the profile's
                self.result.abi = text[3:].strip().strip("<>\"")
            return
        if profile is None:
            if words and not words[0].startswith("#"):
                self.warn(_span_len(stmt.span, text), "A001", f"rule outside any profile: {text[:60]!r}", "rules belong inside `profile NAME { ... }`")
            return
        rule = AARule("", text, _span_len(stmt.span, text), comment=stmt.comment)
        while words and (words[0] in _QUALIFIERS or words[0].startswith("priority=")):
            q = words.pop(0)
            rule.deny |= q == "deny"
            rule.audit |= q == "audit"
            rule.owner |= q == "owner"
        if not words:
            self.warn(rule.span, "A001", f"empty rule: {text!r}")
            return
        head = words[0]
        if head in _KEYWORDS and not (head == "file" and len(words) > 1) and not (head == "link" and len(words) > 1 and words[1].startswith("/")):
            rule.kind = head
            rule.args = tuple(w.strip('"') for w in words[1:])
            if head == "network" and rule.args:
                rule.args = tuple(a for a in rule.args if a not in ("(", ")"))
            profile.rules.append(rule)
            return
        if head == "file":
            words = words[1:]
        if head == "link":
            rule.kind = "link"
            rule.args = tuple(words[1:])
            profile.rules.append(rule)
            return
        arrow = words.index("->") if "->" in words else -1
        if arrow != -1:
            rule.target = " ".join(words[arrow + 1 :]).strip('"')
            words = words[:arrow]
        if len(words) == 2:
            a, b = words
            if _is_path(a) and _PERMS.match(b):
                rule.path, rule.perms = a.strip('"'), b
            elif _is_path(b) and _PERMS.match(a):
                rule.path, rule.perms = b.strip('"'), a
        if not rule.path:
            self.warn(rule.span, "A001", f"unknown rule: {text[:80]!r}", "a construct corral does not know: it is skipped")
            return
        rule.kind = "file"
        perms = rule.perms.strip("()").replace(",", "").replace(" ", "")
        m = re.search(r"[pPcCuU]*i?x|[pPcC]?[uU]?x", perms)
        if m:
            rule.exec_mode = m.group(0)
        rule.perms = perms
        profile.rules.append(rule)


def _is_path(word: str) -> bool:
    w = word.strip('"')
    return w.startswith("/") or w.startswith("@{") or w.startswith("**")


def parse_profile(path: str | Path, search: tuple[str, ...] = DEFAULT_SEARCH) -> AAFile:
    """Read an AppArmor profile file (and what it includes)."""
    from ..fsutil import read_input

    read_input(path, "name an AppArmor profile file")  # a device or FIFO is refused before the reader opens it
    reader = _Reader(search)
    reader.result.path = str(path)
    reader.seen.add(os.path.realpath(path))
    reader.read_file(str(path), None)
    return reader.result


def parse_profile_text(text: str, file: str = "<profile>", search: tuple[str, ...] = DEFAULT_SEARCH) -> AAFile:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".apparmor", delete=False) as fh:
        fh.write(text)
    try:
        result = parse_profile(fh.name, search)
    finally:
        os.unlink(fh.name)
    _rename(result, fh.name, file)
    return result


def _rename(result: AAFile, old: str, new: str) -> None:
    def fix(span: Span) -> Span:
        return Span(new, span.line, span.col, span.length) if span.file == old else span

    result.path = new
    result.sources = {(new if k == old else k): v for k, v in result.sources.items()}
    result.diagnostics = [Diagnostic(fix(d.span), d.code, d.message, d.hint, d.severity) for d in result.diagnostics]
    result.comments = [(c, fix(s)) for c, s in result.comments]
    for top in result.profiles:
        for p in top.all_profiles():
            p.span = fix(p.span)
            p.comments = [(c, fix(s)) for c, s in p.comments]
            for r in p.rules:
                r.span = fix(r.span)
