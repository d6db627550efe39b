"""The plan cache, planted from a run that looked for it elsewhere.

Where the cache lives comes from the environment (XDG_CACHE_HOME, else
HOME/.cache), and every sandbox denies the cache *its* run uses. A run
whose environment names another place (XDG_CACHE_HOME set in one shell and
not in another; HOME unset, as in a root systemd service or ``env -i``)
left the cache a later run reads open to the program: with a policy that
grants the home directory, the program wrote an allow-all plan there, and
the next ``corral run`` of another policy applied it.
"""

from __future__ import annotations

import marshal
import os
import pwd
import shutil
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file


def _chown_tree(top: Path, uid: int) -> None:
    for p in (top, *top.rglob("*")):
        os.chown(p, uid, uid)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("variant", ["xdg-elsewhere", "no-home"])
def test_a_run_looking_elsewhere_cannot_plant_the_cache_a_later_run_reads(arena: Path, probes: dict[str, Path], confined: Confined, user: str, variant: str) -> None:
    as_user(user)
    uid = 0 if user == "root" else 65534
    if variant == "no-home":
        home = Path(pwd.getpwuid(uid).pw_dir)  # where a run without HOME still finds the user's home
        if not home.is_dir():
            pytest.skip(f"{user}'s home {home} does not exist, so no later run caches there")
        first_env = {"HOME": "", "XDG_CACHE_HOME": ""}
    else:
        home = arena / "home"
        home.mkdir()
        first_env = {"HOME": str(home), "XDG_CACHE_HOME": str(arena / "xdg")}
    later_env = {"HOME": str(home), "XDG_CACHE_HOME": ""}
    plans = home / ".cache" / "corral" / "plans"
    made = not plans.exists()
    prep = arena / "prep"  # a cache of its own, to build a genuine plan to forge from
    prep.mkdir()
    victim = arena / "victim"
    victim.write_text("keep\n")
    for p in (prep, victim):
        os.chown(p, uid, uid)
    fs_probe = probes["fs_probe"]
    strict = policy_file(arena, f'Name = "strict"\nExtends = ["base"]\n[Filesystem]\nExec = ["{fs_probe}"]\n', "strict.toml")
    genuine = confined(str(strict), "fs_probe", "write", str(victim), user=user, env={"HOME": "/nonexistent", "XDG_CACHE_HOME": str(prep)})
    assert genuine.answer == "errno=EACCES", genuine.stdout + genuine.stderr
    [cached] = list(prep.rglob("*.plan"))
    plan = marshal.loads(cached.read_bytes())
    plan["paths"] = [*plan["paths"], (str(victim), ["write_file", "read_file"])]  # what the attacker wants next time
    evil = arena / "evil.plan"
    evil.write_bytes(marshal.dumps(plan))
    evil.chmod(0o644)
    target = plans / cached.name
    try:
        if made:
            plans.mkdir(parents=True, mode=0o700)
            if variant == "xdg-elsewhere":
                _chown_tree(home, uid)
        wide = policy_file(arena, f'Name = "wide"\nExtends = ["base"]\n[Filesystem]\nExec = ["{fs_probe}"]\nWritable = ["{home}/**"]\nReadOnly = ["{evil}"]\n', "wide.toml")
        planted = confined(str(wide), "fs_probe", "copy", str(evil), str(target), user=user, env=first_env, run_args=["--best-effort"])
        again = confined(str(strict), "fs_probe", "write", str(victim), user=user, env=later_env)
        assert (again.answer, victim.read_text()) == ("errno=EACCES", "keep\n"), f"the plan planted from a run with another cache location was applied ({planted.answer}): {again.stderr}"
        assert planted.answer.startswith("errno="), planted.stdout + planted.stderr  # the plant itself is refused
    finally:
        target.unlink(missing_ok=True)
        if made and variant == "no-home":
            shutil.rmtree(home / ".cache" / "corral", ignore_errors=True)
