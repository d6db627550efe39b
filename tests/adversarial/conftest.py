"""The attacker's side of the suite: static C probes run under `corral run`.

Every tests/adversarial/*.c is compiled once per session with ``gcc -static``
(a static binary needs no loader or libc from the policy, so a probe measures
the policy and nothing else). A probe takes one attack per invocation:
``PROBE ATTACK [ARGS...]`` and prints the kernel's answer on stdout, one
token: ``ok`` or ``errno=NAME`` (``signal=N`` is recorded when the kernel
kills it). Every probe includes probe.h, which prints that token: one errno
name table (glibc's) for all of them; gcc gets this directory with ``-I``.

The ``confined`` fixture runs a probe under ``corral run POLICY`` as root
and, with ``user="nobody"``, as the unprivileged user with no capabilities
at all: every attack must fail for both. Shared types live in harness.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .harness import HERE, Confined, Outcome, as_user


def _open_dir() -> Path:
    """A fresh directory every user can traverse (pytest's own tmp_path sits
    under a 0700 directory that nobody could not enter)."""
    path = Path(tempfile.mkdtemp(prefix="corral-adversarial-", dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def probes() -> Iterator[dict[str, Path]]:
    """Build every probe once, static; world-readable and executable so that
    nobody can run them too."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the adversarial probes: run `bash dev.sh test`, which installs it")
    out = _open_dir()
    built: dict[str, Path] = {}
    for source in sorted(HERE.glob("*.c")):
        binary = out / source.stem
        subprocess.run([gcc, "-static", "-O1", "-Wall", "-I", str(HERE), "-o", str(binary), str(source)], check=True, capture_output=True)
        binary.chmod(0o755)
        built[source.stem] = binary
    yield built
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def arena() -> Iterator[Path]:
    """A scratch directory for one attack that root and nobody can both use:
    the test lays out files, links and policies here."""
    path = _open_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def confined(probes: dict[str, Path]) -> Iterator[Confined]:
    """``confined(policy, probe, attack, *args, user="root", run_args=())``:
    run ``PROBE ATTACK ARGS`` under ``corral run POLICY`` as ``user``."""

    def run(policy: str | Path, probe: str, attack: str, *args: str, user: str = "root", run_args: Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 60) -> Outcome:
        cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "-q", *run_args, str(policy), "--", str(probes[probe]), attack, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd="/", timeout=timeout, stdin=subprocess.DEVNULL)
        tokens = proc.stdout.split()
        answer = tokens[-1] if tokens else (f"signal={-proc.returncode}" if proc.returncode < 0 else f"exit={proc.returncode}")
        return Outcome(proc.returncode, answer, proc.stdout, proc.stderr)

    yield run
