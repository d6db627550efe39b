"""Persistence: a sandbox must never rewrite the code a later, unconfined
`corral run` executes (threat model, goal 4).

A policy that grants write on a tree holding corral's own package or the
interpreter's import path (``Writable = ["/home/me/**"]`` with a user
install, ``/work/**`` with a checkout, ``/usr/**`` as root) let the program
add a module or a ``.pth`` file that the next `corral run` imports before it
confines anything. Those directories are never writable in a sandbox,
whatever the policy grants; the attack creates a new file in each.
"""

from __future__ import annotations

import os
import site
from pathlib import Path

import pytest

import corral

from .harness import USERS, Confined, policy_file

PACKAGE = Path(corral.__file__).resolve().parent
SITE = Path(next(p for p in site.getsitepackages() if os.path.isdir(p))).resolve()

POLICY = """
Name = "persist"
Extends = ["base"]
[Filesystem]
Writable = ["{package_parent}/**", "{site}/**"]
Exec = ["{probes}/sanity_probe"]
"""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("target", [PACKAGE / "_planted_by_sandbox.py", SITE / "zz_planted_by_sandbox.pth"], ids=["corral-package", "site-packages-pth"])
def test_a_sandbox_cannot_plant_code_corral_imports(confined: Confined, probes: dict[str, Path], arena: Path, user: str, target: Path) -> None:
    policy = policy_file(arena, POLICY.format(package_parent=PACKAGE.parent, site=SITE, probes=probes["sanity_probe"].parent))
    try:
        outcome = confined(policy, "sanity_probe", "write", str(target), user=user)
        assert outcome.answer == "errno=EACCES", outcome
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


SELF = """
Name = "self"
Extends = ["base", "{arena}/parent.toml"]
[Filesystem]
Writable = ["{arena}/**"]
Exec = ["{probes}/sanity_probe"]
"""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("victim", ["self.toml", "parent.toml"])
def test_a_sandbox_cannot_rewrite_its_own_policy(confined: Confined, probes: dict[str, Path], arena: Path, user: str, victim: str) -> None:
    """A policy kept in the directory it makes writable (a project's own
    policy, say) must not be rewritten from inside: the next run would apply
    whatever the program wrote — nor may any file it extends. corral refuses,
    naming the rule; --best-effort runs with the policy read-only."""
    arena.chmod(0o777)  # nobody may write here too, as far as file permissions go
    policy_file(arena, 'Name = "parent"\n', "parent.toml").chmod(0o666)
    policy = policy_file(arena, SELF.format(arena=arena, probes=probes["sanity_probe"].parent), "self.toml")
    policy.chmod(0o666)
    before = (arena / victim).read_bytes()
    refused = confined(policy, "sanity_probe", "write", str(arena / victim), user=user)
    assert refused.returncode == 2 and "could rewrite the policy" in refused.stderr and "self.toml:" in refused.stderr, refused
    outcome = confined(policy, "sanity_probe", "write", str(arena / victim), user=user, run_args=["--best-effort"])
    assert outcome.answer == "errno=EACCES", outcome
    assert (arena / victim).read_bytes() == before
