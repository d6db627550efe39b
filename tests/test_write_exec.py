"""W^X (issue 9, class 10): a path both writable and executable is an error
at check (E022) unless Filesystem.AllowWriteExec names it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import PolicyError
from corral.lower import lower
from corral.policy import globs, load_policy_text


def _lower(text: str) -> object:
    return lower(load_policy_text(text, "wx.toml"))


def _codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as err:
        _lower(text)
    return [f"{d.span}: {d.code}: {d.message}" for d in err.value.diagnostics]


def test_a_writable_glob_that_reaches_an_exec_path_is_an_error_with_its_place(tmp_path: Path) -> None:
    policy = tmp_path / "wx.toml"
    policy.write_text('[Filesystem]\nWritable = ["/srv/app/**"]\nExec = ["/usr/bin/true", "/srv/app/bin/*"]\n')
    proc = subprocess.run([sys.executable, "-I", "-m", "corral.cli", "check", str(policy)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"{policy}:3:26: error[E022]: `/srv/app/bin/*` is executable (Filesystem.Exec) and `/srv/app/**` (Filesystem.Writable, {policy}:2:13) makes it writable"), proc.stderr
    assert 'AllowWriteExec = ["/srv/app/bin/*"]' in proc.stderr


@pytest.mark.parametrize(
    ("writable", "exec_"),
    [
        ('"/opt/tool"', '"/opt/tool"'),  # the same path in both lists
        ('"/opt/*/bin/*"', '"/opt/x/bin/run"'),  # a glob that matches the executable
        ('"/opt/[a-c]*"', '"/opt/b?n"'),  # two globs that share a match, neither containing the other
        ('"/opt/data/"', '"/opt/data/bin/x"'),  # a literal directory: Landlock grants all beneath it
    ],
)
def test_overlap_is_decided_on_globs(writable: str, exec_: str) -> None:
    [error] = _codes(f"[Filesystem]\nWritable = [{writable}]\nExec = [{exec_}]\n")
    assert ": E022: " in error, error


def test_execprofiles_and_flags_count_too() -> None:
    errors = _codes('[Filesystem]\nFlags = ["tmp"]\nExec = ["/tmp/build/tool"]\nExecProfiles = { "/srv/run" = "helper" }\nWritable = ["/srv/*"]\n')
    assert len(errors) == 2 and all(": E022: " in e for e in errors), errors
    assert "`/tmp/**` (flag tmp, wx.toml:2:10) makes it writable" in errors[0] and "`/srv/run` is executable (Filesystem.ExecProfiles)" in errors[1], errors


def test_disjoint_paths_are_fine() -> None:
    ir = _lower('[Filesystem]\nWritable = ["/srv/app/data/**", "/srv/app/*.log"]\nExec = ["/srv/app/bin/*", "/srv/app/run"]\n')
    assert ir.write_exec == ()  # type: ignore[attr-defined]


def test_allow_write_exec_says_it_is_meant_and_explain_lists_it(tmp_path: Path) -> None:
    from corral.analyze.explain import markdown
    from corral.analyze.view import from_corral

    text = '[Filesystem]\nWritable = ["/srv/app/**"]\nExec = ["/srv/app/bin/*", "/srv/app/run"]\nAllowWriteExec = ["/srv/app/bin/*"]\n'
    [error] = _codes(text)  # only what it names is allowed
    assert "`/srv/app/run` is executable" in error
    ir = _lower(text.replace('AllowWriteExec = ["/srv/app/bin/*"]', 'AllowWriteExec = ["/srv/app/bin/*", "/srv/app/run"]'))
    assert ir.write_exec == ("/srv/app/bin/*", "/srv/app/run")  # type: ignore[attr-defined]
    wide = _lower(text.replace('AllowWriteExec = ["/srv/app/bin/*"]', 'AllowWriteExec = ["/srv/app/**"]'))  # naming the writable side covers both
    assert wide.write_exec == ("/srv/app/bin/*", "/srv/app/run")  # type: ignore[attr-defined]
    policy = tmp_path / "waived.toml"
    policy.write_text('[Filesystem]\nWritable = ["/srv/app/**"]\nExec = ["/srv/app/run"]\nAllowWriteExec = ["/srv/app/run"]\n')
    assert "it may write /srv/app/run, which it may execute (Filesystem.AllowWriteExec: W^X waived)" in markdown(from_corral(str(policy)))


def test_a_denied_executable_is_not_an_overlap() -> None:
    ir = _lower('[Filesystem]\nWritable = ["/srv/app/**"]\nExec = ["/srv/app/bin/*"]\nDeny = ["/srv/app/bin/*"]\n')
    assert ir.write_exec == ()  # type: ignore[attr-defined]


_ALPHABET = st.sampled_from(["a", "b", "/", "*", "?", "**", "[ab]", "[^a]"])


def _granted(glob: str) -> str:
    """What a rule reaches: a literal directory is everything beneath it."""
    return glob + "**" if glob.endswith("/") and not globs.has_glob(glob) else glob


@settings(max_examples=300, deadline=None)
@given(a=st.lists(_ALPHABET, min_size=1, max_size=6), b=st.lists(_ALPHABET, min_size=1, max_size=6), path=st.text("ab/", min_size=1, max_size=8))
def test_law_a_path_both_globs_match_means_they_intersect(a: list[str], b: list[str], path: str) -> None:
    """globs.intersects never misses a shared match (W^X would miss an overlap)."""
    ga, gb, p = "/" + "".join(a), "/" + "".join(b), "/" + path
    if globs.matches(_granted(ga), p) and globs.matches(_granted(gb), p):
        assert globs.intersects(ga, gb), (ga, gb, p)


@settings(max_examples=300, deadline=None)
@given(a=st.lists(_ALPHABET, min_size=1, max_size=4), b=st.lists(_ALPHABET, min_size=1, max_size=4))
def test_law_intersecting_globs_share_a_short_path(a: list[str], b: list[str]) -> None:
    """... and says so only when a path matches both: the converse. A
    shortest common path takes at most one character per token of the two
    globs (a step that moves neither is never needed), so searching every
    path that long over a, b, / and one other character decides it; pairs
    whose bound is past 9 characters are left out (the search would be long)."""
    from itertools import product

    ga, gb = "/" + "".join(a), "/" + "".join(b)
    bound = len(globs._tokens(_granted(ga))) + len(globs._tokens(_granted(gb)))
    if bound > 9 or not globs.intersects(ga, gb):
        return
    paths = ("/" + "".join(t) for n in range(bound) for t in product("ab/c", repeat=n))
    assert any(globs.matches(_granted(ga), p) and globs.matches(_granted(gb), p) for p in paths), (ga, gb)


def test_a_literal_directory_meets_a_glob_below_it() -> None:
    """Found by the law above: /aaa/ reaches /aaa/aaaa, which /**aaaa matches."""
    assert globs.intersects("/aaa/", "/**aaaa") and globs.matches("/**aaaa", "/aaa/aaaa")
    assert globs.intersects("/aaa/", "/**b") and not globs.intersects("/aaa/", "/b**")


def test_globs_too_large_to_walk_are_taken_as_overlapping() -> None:
    """The walk is bounded (globs._MAX_PRODUCT token pairs): past it W^X
    errs towards an error the policy can answer with AllowWriteExec."""
    a, b = "/x/" + "*a" * 200, "/x/" + "[^a]*" * 200 + "b"
    assert len(globs._tokens(a)) * len(globs._tokens(b)) > globs._MAX_PRODUCT
    assert globs.intersects(a, b)
    assert not globs.intersects("/y/" + "*a" * 200, b)  # a fixed beginning that differs still decides
