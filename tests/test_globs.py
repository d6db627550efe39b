"""AppArmor glob semantics (the proposal's table) and the safety checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.policy import globs


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("/dir/file", "/dir/file", True),
        ("/dir/*", "/dir/.hidden", True),
        ("/dir/*", "/dir/a/b", False),
        ("/dir/a*", "/dir/abc", True),
        ("/dir/*.png", "/dir/x.png", True),
        ("/dir/*.png", "/dir/x.jpg", False),
        ("/dir/[^.]*", "/dir/.hidden", False),
        ("/dir/[^.]*", "/dir/visible", True),
        ("/dir/", "/dir/", True),
        ("/dir/*/", "/dir/sub/", True),
        ("/dir/*/", "/dir/sub", False),
        ("/dir/**", "/dir/a/b/c", True),
        ("/dir/**/", "/dir/a/b/", True),
        ("/dir/**/", "/dir/a/b", False),
        ("/dir/**[^/]", "/dir/a/b", True),
        ("/dir/**[^/]", "/dir/a/", False),
        ("/dir{,1,2}/**", "/dir1/x", True),
        ("/dir{,1,2}/**", "/dir3/x", False),
        ("/dir/?", "/dir/a", True),
        ("/dir/?", "/dir/ab", False),
        ("/a\\*b", "/a*b", True),
        ("/a\\*b", "/axb", False),
    ],
)
def test_matching(glob: str, path: str, expected: bool) -> None:
    globs.validate(glob)
    assert globs.matches(glob, path) is expected


@pytest.mark.parametrize(
    ("path", "offset", "message"),
    [
        ("tmp/x", 0, "path 'tmp/x' is not absolute"),
        ('/a"b', 2, "double quote in path"),
        ("/a\nb", 2, "control character '\\n' in path"),
        ("/a\0b", 2, "control character '\\x00' in path"),
        ("/a}b", 2, "unbalanced '}'"),
        ("/a{b", 2, "unbalanced '{'"),
        ("/a{b}", 4, "alternatives need at least two items"),
        ("/a[b", 2, "unclosed or empty character class"),
        ("/a/../b", 2, "'..' path segment"),
        ("/@{HOME}/x", 1, "AppArmor variables are not supported in paths"),
        ("/a\\q", 2, "backslash that escapes nothing"),
        ("/a//b", 2, "empty path segment '//'"),
    ],
)
def test_rejections(path: str, offset: int, message: str) -> None:
    with pytest.raises(globs.GlobError) as info:
        globs.validate(path)
    assert (info.value.offset, info.value.message) == (offset, message)


def test_expand() -> None:
    assert globs.expand("/a{,/**}") == ("/a", "/a/**")
    assert globs.expand("/{a,b{c,d}}/x") == ("/a/x", "/bc/x", "/bd/x")


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("/tmp/**", "/tmp/x/y", True),
        ("/tmp/**", "/tmp/*.sock", True),
        ("/tmp/**", "/var/tmp/x", False),
        ("/tmp/*", "/tmp/x/y", False),
        ("/tmp/**", "/tmp{,/**}", False),  # /tmp itself is outside /tmp/**
        ("/run/a/**", "/run/a/{x,y}/**", True),
    ],
)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert globs.covers(outer, inner) is expected


def test_expand_leaves_character_classes_whole() -> None:
    """A ',' or '}' inside [...] is a character, not brace syntax (issue 9:
    `/a{x,[,}]}` expanded to '/ax]}', '/a[]}', '/a]}' and systemd got `-/`)."""
    assert globs.expand("/a{x,[,}]}") == ("/ax", "/a[,}]")
    assert globs.expand("/a[{]b{c,d}") == ("/a[{]bc", "/a[{]bd")
    for alt in globs.expand("/a{x,[,}]}"):
        globs.validate(alt)


CLASS_BODIES = ["-a", "a-", "^-a", "a-c-", "a-c-e", "^a-", "!a", "a-a", "-", "ab-", "a-cx-z", "-a-c", "^-", "a-c", "xa-c-"]


@pytest.mark.parametrize("body", CLASS_BODIES)
def test_a_character_class_check_accepts_is_one_apparmor_parser_loads(body: str, tmp_path: Path) -> None:
    """Whatever `check` accepts, the real parser must load: "[a-]" passed
    check and then failed to load (issue 10)."""
    from conftest import apparmor_compile

    from corral.policy.globs import GlobError, validate

    glob = f"/srv/[{body}]"
    try:
        validate(glob)
    except GlobError:
        return  # refused at check: a located error, nothing reaches the parser
    result = apparmor_compile(f'profile t {{\n  "{glob}" r,\n}}\n', tmp_path)
    assert result.returncode == 0, (glob, result.stderr)
