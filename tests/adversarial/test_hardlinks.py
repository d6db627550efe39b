"""Hard links into a denied directory (issue 9, class 3b), from the
attacker's side: the static ``fs_probe`` reads another name of a file that
lies under a Deny, under ``corral run`` as root and as nobody.

Landlock checks paths, and a hard link is the same file under another
path: a grant that contains a name for a denied file grants the file. `run`
refuses (unless --best-effort, which says so) any file with other names
under a deny that carves into a grant; a deny outside every grant is not
walked, and the coverage report says what that leaves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file


@pytest.fixture(params=USERS)
def user(request: pytest.FixtureRequest) -> str:
    as_user(request.param)  # skips nobody where it cannot switch
    return str(request.param)


def _read(confined: Confined, arena: Path, policy: Path, path: Path, user: str, *run_args: str) -> tuple[int, str, str]:
    env = {"HOME": "/nonexistent", "XDG_CACHE_HOME": str(arena / "cache")}
    out = confined(policy, "fs_probe", "read", str(path), user=user, env=env, run_args=run_args)
    return out.returncode, out.answer, out.stdout + out.stderr


def _tree(arena: Path) -> tuple[Path, Path]:
    """ARENA/a/{d/secret,sub/,public}: a readable tree with a denied corner."""
    a = arena / "a"
    (a / "d").mkdir(parents=True)
    (a / "sub").mkdir()
    for f in (a / "d/secret", a / "public", a / "id.key"):
        f.write_text("secret\n")
        f.chmod(0o644)
    return a, a / "d/secret"


def _policy(arena: Path, probes: dict[str, Path], body: str) -> Path:
    return policy_file(arena, f'Extends = ["base"]\n[Filesystem]\nExec = ["{probes["fs_probe"]}"]\n{body}')


def test_a_link_deep_in_a_split_directory_to_a_file_under_a_denied_directory(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """ReadOnly a/**, Deny a/d/**: a/sub is granted whole, so a/sub/h (=
    a/d/secret) would read the denied file."""
    a, secret = _tree(arena)
    os.link(secret, a / "sub/h")
    policy = _policy(arena, probes, f'ReadOnly = ["{a}/**"]\nDeny = ["{a}/d/**"]\n')
    code, answer, err = _read(confined, arena, policy, a / "sub/h", user)
    assert code == 2 and f"{secret} has 2 hard links: another name for it may lie in an allowed directory" in err, (answer, err)
    assert _read(confined, arena, policy, a / "sub/h", user, "--best-effort")[1] == "ok"  # not enforced ...
    dry = _read(confined, arena, policy, a / "sub/h", user, "--best-effort", "--dry-run")[2]
    assert f"deny {secret} for its other 1 hard link(s)" in dry, dry  # ... and said
    assert _read(confined, arena, policy, secret, user, "--best-effort")[1] == "errno=EACCES"
    assert _read(confined, arena, policy, a / "public", user, "--best-effort")[1] == "ok"


def test_a_link_to_a_file_a_deny_pattern_matches(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    a, _ = _tree(arena)
    os.link(a / "id.key", a / "sub/copy")
    policy = _policy(arena, probes, f'ReadOnly = ["{a}/**"]\nDeny = ["{a}/*.key"]\n')
    code, answer, err = _read(confined, arena, policy, a / "sub/copy", user)
    assert code == 2 and f"{a}/id.key has 2 hard links" in err, (answer, err)


def test_without_other_links_the_split_runs(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    a, secret = _tree(arena)
    policy = _policy(arena, probes, f'ReadOnly = ["{a}/**"]\nDeny = ["{a}/d/**", "{a}/*.key"]\n')
    assert _read(confined, arena, policy, a / "public", user)[:2] == (0, "ok")
    assert _read(confined, arena, policy, secret, user)[:2] == (0, "errno=EACCES")
    assert _read(confined, arena, policy, a / "id.key", user)[:2] == (0, "errno=EACCES")


def test_a_denied_directory_too_big_to_check_is_refused(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    from corral.sandbox.grants import MAX_SPLIT_ENTRIES

    a, _ = _tree(arena)
    for i in range(MAX_SPLIT_ENTRIES + 1):
        (a / "d" / f"f{i}").touch()
    policy = _policy(arena, probes, f'ReadOnly = ["{a}/**"]\nDeny = ["{a}/d/**"]\n')
    code, answer, err = _read(confined, arena, policy, a / "public", user)
    assert code == 2 and f"cannot check every file under the denied {a}/d for other hard links" in err, (answer, err)
    assert _read(confined, arena, policy, a / "public", user, "--best-effort")[1] == "ok"
    dry = _read(confined, arena, policy, a / "public", user, "--best-effort", "--dry-run")[2]
    assert f"deny {a}/d for files under it with other hard links (not checked: more than" in dry, dry


def test_a_denied_directory_outside_every_grant_is_said_not_walked(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """What remains (Landlock is path-based, and walking every denied tree
    would cost every start-up): the link reads, and coverage says so."""
    from corral.compile import coverage_of
    from corral.ir import FileRule
    from corral.lower import lower
    from corral.policy import load_policy_text

    a, secret = _tree(arena)
    allowed = arena / "allowed"
    allowed.mkdir()
    os.link(secret, allowed / "h")
    policy = _policy(arena, probes, f'ReadOnly = ["{allowed}/**"]\nDeny = ["{a}/d/**"]\n')
    assert _read(confined, arena, policy, allowed / "h", user)[:2] == (0, "ok")
    [deny] = [rc for rc in coverage_of(lower(load_policy_text(f'[Filesystem]\nReadOnly = ["{allowed}/**"]\nDeny = ["{a}/d/**"]\n', "p.toml")), ["landlock"]) if isinstance(rc.rule, FileRule) and rc.rule.deny]
    assert "a file under it with another name (a hard link) in an allowed path reads through that name" in deny.selected["landlock"].note
