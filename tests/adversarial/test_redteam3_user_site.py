"""The next corral's start-up, planted through the user site directory.

corral keeps every directory on its interpreter's import path read-only in
a sandbox, so that nothing a confined program writes runs, unconfined, when
the next ``corral run`` starts. A Python that is not in a venv (corral
installed system-wide, or in a venv with system site packages) also imports
from the user's site directory, ``~/.local/lib/pythonX.Y/site-packages``,
and runs its ``.pth`` files — but only once it exists, so it was on no
import path while it did not: a program allowed to write the home
directory made it, with a ``.pth`` inside, and the next corral ran that
line before confining anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file

ROOT = Path(__file__).resolve().parent.parent.parent


def _corral(user: str, arena: Path, home: Path, policy: Path, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """``corral run`` as a system-wide install runs it: a console script on
    the base interpreter, outside any venv, so that it reads the user's site
    directory."""
    python = getattr(sys, "_base_executable", sys.executable)
    script = arena / "bin" / "corral"
    if not script.exists():
        script.parent.mkdir()
        script.write_text(f"#!{python}\nimport sys\nfrom corral.cli import main\nsys.exit(main())\n")
        script.chmod(0o755)
    path = os.pathsep.join([str(ROOT / "src"), sysconfig.get_paths()["purelib"]])  # corral and its dependencies
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": path, "XDG_CACHE_HOME": ""}
    env.pop("PYTHONNOUSERSITE", None)
    return subprocess.run([*as_user(user), str(script), "run", "-q", "--no-cache", str(policy), "--", *cmd], capture_output=True, text=True, env=env, cwd="/", timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("user", USERS)
def test_a_user_site_directory_made_in_a_sandbox_never_runs_in_the_next_corral(arena: Path, probes: dict[str, Path], user: str) -> None:
    as_user(user)
    uid = 0 if user == "root" else 65534
    python = getattr(sys, "_base_executable", sys.executable)
    probe = subprocess.run([python, "-c", "import site, sys; print(site.ENABLE_USER_SITE and sys.prefix == sys.base_prefix)"], capture_output=True, text=True, env={**os.environ, "HOME": "/nonexistent"})
    if probe.stdout.strip() != "True":
        pytest.skip(f"{python} does not read a user site directory")
    home = arena / "home"
    local = home / ".local"
    local.mkdir(parents=True)  # the user has ~/.local, but no site directory in it yet
    marker = arena / "ran"
    pth = arena / "evil.pth"
    pth.write_text(f"import os; open({str(marker)!r}, 'w').write('unconfined')\n")
    pth.chmod(0o644)
    for p in (home, local):
        os.chown(p, uid, uid)
    os.chmod(arena, 0o777)  # the planted line writes its marker here, as the user
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    redteam = probes["redteam3_probe"]
    wide = policy_file(arena, f'Name = "wide"\nExtends = ["base"]\n[Filesystem]\nExec = ["{redteam}"]\nWritable = ["{home}/**"]\nReadOnly = ["{pth}"]\n', "wide.toml")
    planted = _corral(user, arena, home, wide, [str(redteam), "plant", str(local / "lib" / version / "site-packages" / "evil.pth"), str(pth)])
    strict = policy_file(arena, f'Name = "strict"\nExtends = ["base"]\n[Filesystem]\nExec = ["/usr/bin/true"]\n', "strict.toml")
    later = _corral(user, arena, home, strict, ["/usr/bin/true"])
    assert later.returncode == 0, later.stderr
    assert not marker.exists(), f"a .pth file planted from a sandbox ran unconfined in the next corral ({planted.stdout.split()[-1:]})"
    assert planted.stdout.split()[-1:] == ["errno=EACCES"], planted.stdout + planted.stderr  # the plant itself is refused
