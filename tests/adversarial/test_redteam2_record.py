"""redteam2: the `corral run --log-to` record is written by corral after the
run, and `corral learn --into` merges what it says (system calls,
capabilities). A confined program that outlives the run (a child that
waits for its parent's end) could rewrite the record when it lay in a
directory the policy makes writable: `learn --into` then added
``CAP_SYS_ADMIN`` and ``ptrace`` the program never asked corral for.
Nothing from inside the sandbox may influence what corral does next, so the
record is never writable from inside: corral refuses, naming the rule;
``--best-effort`` runs with the record read-only there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .harness import USERS, as_user, policy_file

POLICY = """
Name = "outlive"
Extends = ["base"]
[Filesystem]
Flags = ["rpath", "wpath"]
Writable = ["{arena}/out/**", "{arena}/mark/**"]
Exec = ["{probe}"]
"""


def _run(user: str, policy: Path, probe: Path, record: Path, marker: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "-q", *extra, "--log-to", str(record), str(policy), "--", str(probe), "outlive", str(record), str(marker)]
    # the probe's child keeps stdout open: this returns once it has tried
    return subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=120, stdin=subprocess.DEVNULL)


def _marker(marker: Path) -> str:
    for _ in range(200):  # the child writes it just before it exits
        if marker.exists() and marker.read_text():
            return marker.read_text()
        time.sleep(0.05)
    return ""


@pytest.mark.parametrize("user", USERS)
def test_a_program_cannot_forge_its_run_record(probes: dict[str, Path], arena: Path, user: str) -> None:
    arena.chmod(0o777)
    for sub in ("out", "mark"):
        (arena / sub).mkdir(mode=0o777)
        (arena / sub).chmod(0o777)
    probe = probes["forge_probe"]
    policy = policy_file(arena, POLICY.format(arena=arena, probe=probe))
    inside, marker = arena / "out" / "record.jsonl", arena / "mark" / "marker"

    refused = _run(user, policy, probe, inside, marker)
    assert refused.returncode == 2 and "--log-to record" in refused.stderr and "attack.toml:" in refused.stderr, refused
    assert not inside.exists() and not marker.exists()

    best = _run(user, policy, probe, inside, marker, "--best-effort")
    assert best.returncode == 0, best.stderr
    assert _marker(marker) == "errno=EACCES", "the child did not live on, or forged the record"
    assert "forged" not in inside.read_text() and '"corral_run_log": 1' in inside.read_text()


@pytest.mark.parametrize("user", USERS)
def test_a_record_outside_the_writable_tree_is_corrals(probes: dict[str, Path], arena: Path, user: str) -> None:
    """The same program, the record beside the writable tree: the child
    lives on and tries (the marker says so), the record stays corral's."""
    arena.chmod(0o777)
    for sub in ("out", "mark"):
        (arena / sub).mkdir(mode=0o777)
        (arena / sub).chmod(0o777)
    probe = probes["forge_probe"]
    policy = policy_file(arena, POLICY.format(arena=arena, probe=probe))
    record, marker = arena / "record.jsonl", arena / "mark" / "marker"
    done = _run(user, policy, probe, record, marker)
    assert done.returncode == 0, done.stderr
    assert _marker(marker).startswith("errno="), _marker(marker)
    assert "forged" not in record.read_text() and str(probe) in record.read_text()
    assert os.stat(record).st_size > 0
