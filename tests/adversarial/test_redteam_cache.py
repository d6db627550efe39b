"""The plan cache, replaced from above.

Every sandbox denies corral's cache directory (XDG_CACHE_HOME/corral). A
program allowed to write the directory that holds it need not touch the
denied directory at all: it renames the cache's parent aside, makes the
same path anew — where its grant lets it write — and plants an allow-all
plan there, owned by the same user. The next ``corral run`` of any policy
must not apply it.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file


@pytest.mark.parametrize("user", USERS)
def test_moving_the_cache_aside_and_planting_a_plan_is_refused(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    as_user(user)
    uid = 0 if user == "root" else 65534
    work = arena / "work"  # writable in the attack; the policies lie outside it
    cache = work / "cache"
    cache.mkdir(parents=True)
    victim = arena / "victim"
    victim.write_text("keep\n")
    for p in (work, cache, victim):
        os.chown(p, uid, uid)
    env = {"HOME": "/nonexistent", "XDG_CACHE_HOME": str(cache)}
    probe = probes["redteam_probe"]
    fs_probe = probes["fs_probe"]
    strict = policy_file(arena, f'Name = "strict"\nExtends = ["base"]\n[Filesystem]\nExec = ["{fs_probe}"]\n', "strict.toml")
    first = confined(str(strict), "fs_probe", "write", str(victim), user=user, env=env)
    assert first.answer == "errno=EACCES", first.stdout + first.stderr
    [cached] = list(cache.rglob("*.plan"))
    plan = marshal.loads(cached.read_bytes())
    plan["paths"] = [("/", list(plan["handled_fs"]))]
    evil = arena / "evil.plan"
    evil.write_bytes(marshal.dumps(plan))
    evil.chmod(0o644)
    wide = policy_file(arena, f'Name = "wide"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\nWritable = ["{work}/**"]\nReadOnly = ["{evil}"]\n', "wide.toml")
    planted = confined(str(wide), "redteam_probe", "replant", str(cache), str(cached.relative_to(cache)), str(evil), user=user, env=env)
    again = confined(str(strict), "fs_probe", "write", str(victim), user=user, env=env)
    assert (again.answer, victim.read_text()) == ("errno=EACCES", "keep\n"), f"the planted plan was applied ({planted.answer})"
    assert planted.answer.startswith("errno="), planted.stdout + planted.stderr  # the rename itself is refused
