"""AppArmor path globs: validation, expansion, matching and containment.

The policy's path lists use AppArmor's glob syntax (the proposal's table):
``*`` any characters but ``/``; ``**`` any characters including ``/``;
``?`` one character but ``/``; ``[abc]`` and ``[^abc]`` character classes;
``{a,b}`` alternatives; a trailing ``/`` names a directory.

Validation is strict on purpose: a path ends up inside an AppArmor profile,
so anything that could change the profile's structure (a quote, a newline,
an unbalanced brace, a variable) is rejected here, with the column of the
offending character, before any backend sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: Characters with glob meaning; a backslash may escape exactly these.
GLOB_CHARS = frozenset("*?[]{}")
_ESCAPABLE = frozenset("*?[]{}\\,^")
#: Brace expansions beyond this are refused: a policy is meant to be read.
MAX_EXPANSIONS = 64
#: Brace groups per path: more cannot stay under MAX_EXPANSIONS unless they
#: nest, and apparmor_parser fails on nesting deeper than 49 levels
#: (measured: "Exceeded maximum nesting of {}").
MAX_BRACE_GROUPS = 16
#: Longest path, in UTF-8 bytes: Linux's PATH_MAX. apparmor_parser's lexer
#: fails on a quoted path over 16,380 bytes (measured with -Q -S: "input
#: buffer overflow, can't enlarge buffer because scanner uses REJECT").
MAX_PATH = 4096


@dataclass(frozen=True)
class GlobError(Exception):
    """A path is not a valid glob; ``offset`` is 0-based into the path."""

    offset: int
    message: str
    hint: str = ""


def _check_class_dashes(chars: str, at: int) -> None:
    """apparmor_parser's reading of '-' in a class: literal only as the
    class's first character, otherwise the operator of one range between two
    characters. ``[a-]``, ``[ab-]`` and ``[a-c-e]`` fail to load."""
    pos = 1 if chars.startswith("-") else 0
    while pos < len(chars):
        if chars[pos + 1 : pos + 2] == "-":
            if pos + 2 >= len(chars):
                raise GlobError(at + pos + 1, "'-' at the end of a character class", "put a literal '-' first in the class: [-a]")
            pos += 3
            if chars[pos : pos + 1] == "-":
                raise GlobError(at + pos, "'-' right after a range in a character class", "put a literal '-' first in the class, or split the ranges: [-a-c]")
        else:
            pos += 1


def validate(path: str) -> None:
    """Raise ``GlobError`` unless ``path`` is a safe, well-formed AppArmor glob."""
    if not path.startswith("/"):
        raise GlobError(0, f"path {path[:60]!r} is not absolute", "paths start with '/'")
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH:  # bytes, not characters: 4,095 four-byte characters overflowed apparmor_parser's 16 KB token buffer
        cut = len(path.encode("utf-8", "surrogatepass")[:MAX_PATH].decode("utf-8", "ignore"))
        raise GlobError(cut, f"path of {size} bytes, longer than {MAX_PATH}", f"the limit is {MAX_PATH} bytes (Linux's PATH_MAX); apparmor_parser refuses paths over 16,380 bytes")
    depth = 0
    groups = 0
    in_class = False
    brace_items: list[int] = []
    empty_items: list[int] = []
    i = 0
    while i < len(path):
        c = path[i]
        if depth and c in ",}" and path[i - 1] in "{,":
            empty_items[-1] += 1
            if empty_items[-1] > 1:  # apparmor_parser never returns on "{,,,}"
                raise GlobError(i, "more than one empty alternative in braces", "write {,b} for 'nothing or b'; one empty item is enough")
        if c == "\0" or ord(c) < 0x20 or ord(c) == 0x7F:
            raise GlobError(i, f"control character {c!r} in path", "paths are one line of printable characters")
        if c == '"':
            raise GlobError(i, "double quote in path", "a quote would end the path inside the AppArmor profile")
        if c == "\\":
            if in_class:  # the matchers find a class's end by its first ']'
                raise GlobError(i, "backslash inside a character class", "write the characters of the class without escapes, or use alternatives: {a,\\]}")
            if i + 1 >= len(path) or path[i + 1] not in _ESCAPABLE:
                raise GlobError(i, "backslash that escapes nothing", "a backslash may only escape one of * ? [ ] { } , ^ \\")
            i += 2
            continue
        if c == "@" and path.startswith("@{", i):
            raise GlobError(i, "AppArmor variables are not supported in paths", "write the path out; Landlock and seccomp know no variables")
        if in_class:
            if c == "]":
                in_class = False
            elif c == "[":
                raise GlobError(i, "'[' inside a character class", "close the class with ']' first")
        elif c == "[":
            close = path.find("]", i + 1)
            body = path[i + 1 : close] if close != -1 else ""
            if close == -1 or body in ("", "^"):
                raise GlobError(i, "unclosed or empty character class", "write a class as [abc] or [^abc]")
            chars = body[1:] if body.startswith("^") else body
            _check_class_dashes(chars, i + 1 + (len(body) - len(chars)))
            for r in re.finditer(r"(.)-(.)", chars):
                if r.group(1) > r.group(2) and "\\" not in r.group():
                    raise GlobError(i + 1 + (len(body) - len(chars)) + r.start(), f"character range '{r.group()}' runs backwards", f"write it low to high: [{r.group(2)}-{r.group(1)}]")
            in_class = True
        elif c == "]":
            raise GlobError(i, "unbalanced ']'", "escape a literal bracket as \\]")
        elif c == "{":
            depth += 1
            groups += 1
            if groups > MAX_BRACE_GROUPS:
                raise GlobError(i, f"more than {MAX_BRACE_GROUPS} brace groups in one path", "split the path into several entries")
            brace_items.append(0)
            empty_items.append(0)
        elif c == "}":
            if depth == 0:
                raise GlobError(i, "unbalanced '}'", "escape a literal brace as \\}")
            empty_items.pop()
            if brace_items.pop() == 0:
                raise GlobError(i, "alternatives need at least two items", "write {a,b}, or {,b} for 'nothing or b'")
            depth -= 1
        elif c == "," and depth:
            brace_items[-1] += 1
        i += 1
    if in_class:
        raise GlobError(len(path) - 1, "unclosed character class", "close it with ']'")
    if depth:
        raise GlobError(path.rfind("{"), "unbalanced '{'", "close the alternatives with '}'")
    for segment in ("/../", "/./"):
        if segment in path + "/":
            at = (path + "/").find(segment)
            raise GlobError(at, f"'{segment.strip('/')}' path segment", "paths are matched after resolution, so '.' and '..' never match; write the resolved path")
    if "//" in path:
        raise GlobError(path.find("//"), "empty path segment '//'", "remove the doubled slash")
    if len(expand(path)) > MAX_EXPANSIONS:
        raise GlobError(0, f"more than {MAX_EXPANSIONS} alternatives after expanding braces", "split the path into several entries")


@lru_cache(maxsize=4096)
def expand(path: str) -> tuple[str, ...]:
    """Expand ``{a,b}`` alternatives (nested too) into plain globs. A glob
    read from a profile (never validated) with more groups than a policy
    may hold is left as it is rather than recursed into."""
    if path.count("{") > MAX_BRACE_GROUPS:
        return (path,)
    start = _find_unescaped(path, "{", classes=True)
    if start == -1:
        return (path,)
    depth = 0
    items: list[str] = []
    last = start + 1
    i = start
    while i < len(path):
        c = path[i]
        if c == "\\":
            i += 2
            continue
        if c == "[" and path.find("]", i + 1) != -1:  # a class is one character: its ',' and '}' are not syntax
            i = path.index("]", i + 1) + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                items.append(path[last:i])
                break
        elif c == "," and depth == 1:
            items.append(path[last:i])
            last = i + 1
        i += 1
    head, tail = path[:start], path[i + 1 :]
    out: list[str] = []
    for item in items:
        for expanded in expand(head + item + tail):
            if expanded not in out:
                out.append(expanded)
            if len(out) > MAX_EXPANSIONS:
                return tuple(out)
    return tuple(out)


def _find_unescaped(text: str, char: str, *, classes: bool = False) -> int:
    """The index of the first unescaped ``char`` (outside ``[...]`` classes
    with ``classes``), or -1."""
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if classes and text[i] == "[" and char != "[" and text.find("]", i + 1) != -1:  # unclosed: a literal '[' (profiles)
            i = text.index("]", i + 1) + 1
            continue
        if text[i] == char:
            return i
        i += 1
    return -1


def unescape(path: str) -> str:
    """A glob without glob characters as the literal path it names (``\\[`` is ``[``)."""
    return re.sub(r"\\(.)", r"\1", path)


def has_glob(path: str) -> bool:
    """Whether the (expanded) path contains an unescaped glob character."""
    return any(_find_unescaped(path, c) != -1 for c in GLOB_CHARS)


def literal_prefix(path: str) -> str:
    """The part of one expanded glob before its first glob character."""
    cut = min((i for i in (_find_unescaped(path, c) for c in GLOB_CHARS) if i != -1), default=len(path))
    return path[:cut].replace("\\", "")


@lru_cache(maxsize=4096)
def to_regex(path: str) -> re.Pattern[str]:
    """Compile a glob to a regex with the kernel's AppArmor matching rules."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(path):
        c = path[i]
        if c == "\\":
            out.append(re.escape(path[i + 1]))
            i += 2
            continue
        # The kernel's rule (apparmor_parser's regex conversion, measured by
        # tests/vm/test_globs_kernel.py): a * or ** right after / matches at
        # least one character, so DIR/* and DIR/** never match DIR/ itself.
        after_slash = i > 0 and path[i - 1] == "/"
        if path.startswith("**", i):
            out.append("[^/].*" if after_slash else ".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]+" if after_slash else "[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            close = path.index("]", i + 1)
            body = path[i + 1 : close]
            negate = body.startswith("^")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = close + 1
            continue
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}":
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


@dataclass(frozen=True)
class _Class:
    """A character class: ``[^...]`` negated; single characters and ranges."""

    negate: bool
    singles: frozenset[str]
    ranges: tuple[tuple[str, str], ...]


#: A glob token: ("lit", c), ("star", "") for '*' (no '/'), ("any", "") for
#: '**', ("one", "") for '?' (one character but '/'), or a class.
_Token = tuple[str, str] | _Class


@lru_cache(maxsize=4096)
def _tokens(glob: str) -> tuple[_Token, ...]:
    """The tokens of one brace-free glob. Tolerant: globs read from AppArmor
    profiles were never validated, so an unclosed class is a literal '['
    and a backwards range matches nothing, instead of an exception."""
    out: list[_Token] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "\\" and i + 1 < len(glob):
            out.append(("lit", glob[i + 1]))
            i += 2
        elif c == "*":
            # The kernel's rule (apparmor_parser's regex conversion, measured
            # by tests/vm/test_globs_kernel.py): a * or ** right after / matches
            # at least one character, not '/', so DIR/* and DIR/** never match
            # DIR/ itself: that first character is a '?'.
            if i > 0 and glob[i - 1] == "/":
                out.append(("one", ""))
            out.append(("any", "") if glob.startswith("**", i) else ("star", ""))
            i += 2 if glob.startswith("**", i) else 1
        elif c == "?":
            out.append(("one", ""))
            i += 1
        elif c == "[" and glob.find("]", i + 2) != -1:
            close = glob.find("]", i + 2 if glob.startswith("[^", i) else i + 1)
            body = glob[i + 1 : close]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            ranges = tuple((m.group(1), m.group(2)) for m in re.finditer(r"(.)-(.)", body))
            singles = frozenset(re.sub(r"(.)-(.)", "", body))
            out.append(_Class(negate, singles, ranges))
            i = close + 1
        else:
            out.append(("lit", c))
            i += 1
    return tuple(out)


def _accepts(token: _Token, ch: str) -> bool:
    if isinstance(token, _Class):  # a negated class never matches '/'
        inside = ch in token.singles or any(lo <= ch <= hi for lo, hi in token.ranges)
        return ch != "/" and not inside if token.negate else inside
    kind = token[0]
    if kind == "lit":
        return token[1] == ch
    return kind == "any" or ch != "/"  # star, one


def _repeats(token: _Token) -> bool:
    return not isinstance(token, _Class) and token[0] in ("star", "any")


def _match_tokens(tokens: tuple[_Token, ...], path: str) -> bool:
    """Thompson-style simulation: the set of token positions reachable after
    each character. Linear in len(tokens) * len(path), whatever the glob
    (a backtracking regex took a minute on '/**a**a...**b')."""

    def close(states: set[int]) -> set[int]:
        todo = list(states)
        while todo:  # '*' and '**' may match nothing
            at = todo.pop()
            if at < len(tokens) and _repeats(tokens[at]) and at + 1 not in states:
                states.add(at + 1)
                todo.append(at + 1)
        return states

    states = close({0})
    for ch in path:
        nxt: set[int] = set()
        for at in states:
            if at < len(tokens) and _accepts(tokens[at], ch):
                nxt.add(at if _repeats(tokens[at]) else at + 1)
        states = close(nxt)
        if not states:
            return False
    return len(tokens) in states


def matches(glob: str, path: str) -> bool:
    """Whether a concrete path matches the glob (AppArmor's rules), in time
    linear in the path, for any glob, validated or read from a profile."""
    try:
        alternatives = expand(glob)
    except (ValueError, IndexError, RecursionError):  # a profile's glob with broken braces: take it literally
        alternatives = (glob,)
    return any(_match_tokens(_tokens(alt), path) for alt in alternatives)


def is_exact(path: str) -> bool:
    """Whether apparmor_parser treats a rule's path as an exact match: no
    ``*``, ``?`` or class (braces of literals are exact). Measured: an exact
    rule's exec mode takes precedence over a glob's; two exact rules, or two
    globs, that share a path with different modes fail to load."""
    return all(_find_unescaped(path, c) == -1 for c in "*?[")


def covers(outer: str, inner: str) -> bool:
    """Conservatively decide whether every path ``inner`` matches, ``outer`` matches too.

    True only when it can be shown cheaply: equal globs, an inner literal
    path the outer glob matches, or an outer ``PREFIX/**`` with every
    expansion of inner starting with PREFIX/. False means "not shown".
    """
    if outer == inner:
        return True
    for inner_alt in expand(inner):
        if not has_glob(inner_alt):
            if not matches(outer, inner_alt.replace("\\", "")):
                return False
            continue
        if not any(_prefix_covers(o, inner_alt) for o in expand(outer)):
            return False
    return True


class CoverIndex:
    """Outer globs indexed by their expansions' literal prefixes, so that
    "does any of them cover this path" compares a path with only the globs
    that can: ``covers(outer, inner)`` holds only when a literal prefix of
    one of outer's expansions is a prefix of inner's (a path matched by a
    glob starts with its literal prefix). Lowering asked it of every deny
    for every allowed path: 10,000 of each took hours."""

    def __init__(self, outers: list[str]) -> None:
        self.by_prefix: dict[str, list[str]] = {}
        for outer in outers:
            for alt in expand(outer):
                self.by_prefix.setdefault(literal_prefix(alt), []).append(outer)

    def covered(self, inner: str) -> bool:
        lp = literal_prefix(expand(inner)[0])
        seen: set[str] = set()
        for end in range(len(lp) + 1):
            for outer in self.by_prefix.get(lp[:end], ()):
                if outer not in seen:
                    seen.add(outer)
                    if covers(outer, inner):
                        return True
        return False


def _prefix_covers(outer: str, inner: str) -> bool:
    if outer == inner:
        return True
    if outer.endswith("/**") and not has_glob(outer[:-2]):
        return literal_prefix(inner).startswith(outer[:-2])
    return False


#: Token pairs beyond which two globs are not walked (``intersects`` then
#: answers True): the walk is bounded whatever a policy holds.
_MAX_PRODUCT = 20_000
#: A class range at most this wide is tried character by character when
#: two globs are intersected; a wider one by its ends and their neighbours.
_SMALL_RANGE = 256


def _witnesses(tokens: tuple[_Token, ...]) -> set[str]:
    """Characters that decide which tokens can meet: every character a
    literal or a class names (whole small ranges), '/' and one character
    no token names (what a star, '?' or negated class matches "otherwise")."""
    out = {"/"}
    for t in tokens:
        if isinstance(t, _Class):
            out |= t.singles
            for lo, hi in t.ranges:
                if ord(hi) - ord(lo) <= _SMALL_RANGE:
                    out |= {chr(c) for c in range(ord(lo), ord(hi) + 1)}
                else:
                    out |= {lo, hi, chr(ord(lo) + 1), chr(ord(hi) - 1)}
        elif t[0] == "lit":
            out.add(t[1])
    out.add(next(chr(c) for c in range(0x4E00, 0x10FFFF) if chr(c) not in out))
    return out


def intersects(a: str, b: str) -> bool:
    """Whether some path matches both globs (AppArmor's rules): a walk of the
    product of their token automata over the characters that can tell the
    tokens apart. Exact for literals, stars, '?', '**' and classes whose
    ranges are at most 256 characters wide; wider ranges err towards True.
    A literal directory (``/srv/data/``) is taken as everything beneath it,
    which is what Landlock grants for it."""
    for x in expand(a):
        for y in expand(b):
            px, py = literal_prefix(x).replace("\\", ""), literal_prefix(y).replace("\\", "")
            if not (px.startswith(py) or py.startswith(px)):
                continue  # their fixed beginnings already differ
            tx, ty = (_tokens(g + "**" if g.endswith("/") and not has_glob(g) else g) for g in (x, y))
            if len(tx) * len(ty) > _MAX_PRODUCT or _product_accepts(tx, ty, _witnesses(tx) | _witnesses(ty)):
                return True  # too large to walk in bounded time: taken as overlapping
    return False


def _product_accepts(tx: tuple[_Token, ...], ty: tuple[_Token, ...], chars: set[str]) -> bool:
    """Whether both token lists accept one path: a walk over pairs of
    positions. Where both tokens accept a common character the walk moves
    on in both (staying on a repeating token), whichever the character, so
    each token's accepted witnesses are a bit mask and a step is one AND."""
    witnesses = sorted(chars)
    mx = [sum(1 << k for k, ch in enumerate(witnesses) if _accepts(t, ch)) for t in tx]
    my = [sum(1 << k for k, ch in enumerate(witnesses) if _accepts(t, ch)) for t in ty]
    rx = [_repeats(t) for t in tx]
    ry = [_repeats(t) for t in ty]
    end = (len(tx), len(ty))
    seen = {(0, 0)}
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) == end:
            return True
        steps = []
        if i < len(tx) and rx[i]:
            steps.append((i + 1, j))  # '*' and '**' may match nothing
        if j < len(ty) and ry[j]:
            steps.append((i, j + 1))
        if i < len(tx) and j < len(ty) and mx[i] & my[j]:
            steps.append((i if rx[i] else i + 1, j if ry[j] else j + 1))
        for state in steps:
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return False
