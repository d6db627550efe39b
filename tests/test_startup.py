"""`corral check` warns when no program can start under a policy's system
call filter (the proposal's example: no stdio flag), and only then."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, ir_of
from corral.startup import missing

ROOT = Path(__file__).resolve().parent.parent


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", "check", str(path)], capture_output=True, text=True)


def test_the_proposal_example_gets_the_warning() -> None:
    proc = check(ROOT / "examples" / "proposal.toml")
    assert proc.returncode == 0
    assert "warning[C007]: no program can start" in proc.stderr and "exit_group or exit" in proc.stderr
    assert "add the stdio flag" in proc.stderr


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.name != "proposal.toml"], ids=lambda p: p.name)
def test_startable_examples_do_not(example: Path) -> None:
    assert "no program can start" not in check(example).stderr


def test_the_stdio_flag_is_what_starting_needs() -> None:
    assert missing(ir_of('[Runtime]\nFlags = ["malloc"]\n'))
    assert not missing(ir_of('[Runtime]\nFlags = ["stdio"]\n'))
