"""What `corral run` imports before it becomes the program, on a cached
plan: the start-up budget (≤ 25 ms over a bare exec, bench/run_bench.py)
is spent mostly on imports, so the heavy ones are kept off this path.
Asserted on the interpreter's own import log (-X importtime), not on time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SHELL = str(ROOT / "tests/policies/shell.toml")
#: Modules a cached `corral run` must not import: `re` (with enum and
#: functools, ~5 ms), argparse, the policy loader, the backends, libseccomp.
HEAVY = ("re", "enum", "argparse", "tomllib", "dataclasses", "corral.policy", "corral.lower", "corral.backends", "seccomp", "pyseccomp")


def _imported(tmp_path: Path, cmd: list[str]) -> set[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    args = ["run", "-q", SHELL, "--", "/usr/bin/true"]
    subprocess.run([*cmd, *args], check=True, env=env)  # makes and caches the plan
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:], *args], capture_output=True, text=True, env=env, check=True)
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line}


def test_the_installed_command_imports_nothing_heavy_on_a_cached_run(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "corral"
    assert script.read_text().splitlines()[0].startswith("#!"), "pip installs bin/corral with the interpreter on its first line"
    names = _imported(tmp_path, [sys.executable, str(script)])
    assert "corral.sandbox.apply" in names and "ctypes" in names, sorted(names)  # the log is read, and the run path taken
    heavy = sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))
    assert heavy == [], heavy
