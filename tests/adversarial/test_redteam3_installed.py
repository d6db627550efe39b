"""corral's own venv, rewritten from a sandbox.

corral keeps its package, its interpreter and its import path read-only in
every sandbox. Installed in a venv inside a project directory — the usual
place for a development install — a policy that lets the program write the
project lets it write the venv too, where two things decide what the next
``corral`` runs: the console script in ``bin/`` (on the import path while
the script runs, so it held) and ``pyvenv.cfg``, on no import path at all.
Its ``home`` names where the interpreter finds its standard library: the
program pointed it at a directory of its own with an ``encodings`` package
in it, which Python imports at start-up, before corral confines anything.
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


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("target", ["script", "pyvenv.cfg"])
def test_corrals_venv_is_never_writable_in_a_sandbox(arena: Path, probes: dict[str, Path], user: str, target: str) -> None:
    prefix = as_user(user)
    uid = 0 if user == "root" else 65534
    project = arena / "project"
    venv = project / ".venv"
    python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    (project / "src").mkdir()
    [site] = list(venv.glob("lib/python*/site-packages"))
    (site / "corral-dev.pth").write_text(f"{ROOT / 'src'}\n{sysconfig.get_paths()['purelib']}\n")  # corral and its dependencies
    script = venv / "bin" / "corral"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom corral.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    for p in (project, *project.rglob("*")):
        os.lchown(p, uid, uid)
    marker = arena / "ran"
    os.chmod(arena, 0o777)  # the planted code leaves its marker here, as the user
    probe = probes["redteam3_probe"]
    wide = policy_file(arena, f'Name = "wide"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\nWritable = ["{project}/**"]\nReadOnly = ["{arena}/*"]\n', "wide.toml")
    strict = policy_file(arena, 'Name = "strict"\nExtends = ["base"]\n[Filesystem]\nExec = ["/usr/bin/true"]\n', "strict.toml")
    env = {**os.environ, "HOME": "/nonexistent", "XDG_CACHE_HOME": ""}

    def corral(policy: Path, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, str(script), "run", "-q", "--no-cache", str(policy), "--", *cmd], capture_output=True, text=True, env=env, cwd="/", timeout=60, stdin=subprocess.DEVNULL)

    def plant(path: Path, text: str) -> str:
        source = arena / f"plant-{path.name}"
        source.write_text(text)
        source.chmod(0o644)
        got = corral(wide, [str(probe), "plant", str(path), str(source)])
        return " ".join(got.stdout.split()[-1:]) or got.stderr

    sane = corral(strict, ["/usr/bin/true"])
    assert sane.returncode == 0 and not marker.exists(), sane.stderr
    if target == "script":
        answers = [plant(script, f"#!/bin/sh\necho unconfined > {marker}\n")]
    else:
        fake = project / "src" / "fake"  # the project's own files are writable
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        answers = [
            plant(fake / "lib" / version / "os.py", ""),  # the landmark of a standard library
            # imported at start-up, before builtins.open exists
            plant(fake / "lib" / version / "encodings" / "__init__.py", f"import posix; posix.write(posix.open({str(marker)!r}, posix.O_WRONLY | posix.O_CREAT, 0o644), b'unconfined')\n"),
            plant(venv / "pyvenv.cfg", f"home = {fake / 'bin'}\ninclude-system-site-packages = false\n"),
        ]
    corral(strict, ["/usr/bin/true"])
    assert not marker.exists(), f"corral's venv, rewritten in a sandbox, ran the program's code unconfined in the next corral run ({answers})"
    assert answers[-1] == "errno=EACCES", answers  # the last step itself is refused
