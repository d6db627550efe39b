"""The harness itself: a probe that is allowed works, one that is not gets
the kernel's EACCES, as root and as nobody. If these fail, every other
adversarial result is meaningless."""

from __future__ import annotations

from pathlib import Path

import pytest
from .harness import USERS, Confined, policy_file

POLICY = """
Name = "sanity"
Extends = ["base"]
[Filesystem]
ReadOnly = ["{dir}/readable"]
Exec = ["{probes}/sanity_probe"]
"""


@pytest.mark.parametrize("user", USERS)
def test_probe_allowed_and_denied(confined: Confined, probes: dict[str, Path], arena: Path, user: str) -> None:
    policy = policy_file(arena, POLICY.format(dir=arena, probes=probes["sanity_probe"].parent))
    (arena / "readable").write_text("x")
    (arena / "readable").chmod(0o644)
    (arena / "secret").write_text("x")
    (arena / "secret").chmod(0o644)
    allowed = confined(policy, "sanity_probe", "read", str(arena / "readable"), user=user)
    assert allowed.answer == "ok", allowed
    denied = confined(policy, "sanity_probe", "read", str(arena / "secret"), user=user)
    assert denied.answer == "errno=EACCES", denied
    written = confined(policy, "sanity_probe", "write", str(arena / "readable"), user=user)
    assert written.answer == "errno=EACCES", written


LISTING = """
Name = "listing"
[Runtime]
Flags = ["stdio", "malloc"]
[Filesystem]
ReadOnly = ["{dir}/", "{dir}/**"]
Exec = ["{probes}/sanity_probe"]
"""


@pytest.mark.parametrize("user", USERS)
def test_a_readonly_directory_can_be_listed(confined: Confined, probes: dict[str, Path], arena: Path, user: str) -> None:
    """AppArmor lets a ReadOnly directory be listed; corral run refused
    getdents64 unless the policy also named the rpath flag (issue 10's
    differential). A ReadOnly path now brings rpath, as Writable brings
    wpath and cpath."""
    (arena / "data").mkdir()
    (arena / "data" / "f").write_text("x")
    policy = policy_file(arena, LISTING.format(dir=arena / "data", probes=probes["sanity_probe"].parent))
    listed = confined(policy, "sanity_probe", "list", str(arena / "data"), user=user)
    assert listed.answer == "ok", listed
    outside = confined(policy, "sanity_probe", "list", "/etc", user=user)
    assert outside.answer == "errno=EACCES", outside
