"""Rights an older Landlock lacks, reached through calls allowed with Args.

Landlock restricts truncation from ABI 3 and device ioctls from ABI 5. On
an older kernel `run` must refuse (or, with --best-effort, say what it
cannot enforce) whenever the policy allows a call that truncates or asks a
driver, in any form: an Args filter narrows a call's arguments, never the
file it lands on. ``CORRAL_LANDLOCK_ABI`` makes run build the ruleset an
older kernel would take, so the kernel's answer is the older kernel's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file

TCGETS = "0x5401"
#: No template (base's devices flag implies cpath, whose openat is outright):
#: a static program that may open files read-only, as its author thought.
READ_OPENS = """
[Filesystem]
Flags = ["rpath", "read-opens"]
Exec = ["{probe}"]
ReadOnly = ["{victim}"]
[Runtime]
Flags = ["stdio", "malloc", "exec"]
[Misc]
ImplyFlags = false
DenySyscalls = ["ftruncate"]
[[Flag]]
Name = "read-opens"
Description = "open files for reading"
Category = "Filesystem"
Args = {{ openat = [[{{ arg = 2, op = "masked_eq", mask = 3, value = 0 }}]] }}
"""


def _env(arena: Path, abi: int) -> dict[str, str]:
    """A cache of its own, and the kernel capped at ABI ``abi`` (99: as it is)."""
    return {"HOME": "/nonexistent", "XDG_CACHE_HOME": str(arena / "cache"), "CORRAL_LANDLOCK_ABI": str(abi)}


@pytest.mark.parametrize("user", USERS)
def test_truncating_a_readonly_file_through_a_filtered_openat(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """A "read-only opens" filter (O_ACCMODE == O_RDONLY) and no call that
    truncates outright: O_RDONLY|O_TRUNC is a read to Landlock below ABI 3,
    and empties a ReadOnly file."""
    as_user(user)
    victim = arena / "victim"
    victim.write_text("keep\n")
    os.chown(victim, *(2 * (0 if user == "root" else 65534,)))
    policy = policy_file(arena, READ_OPENS.format(probe=probes["fs_probe"], victim=victim))
    assert confined(policy, "fs_probe", "truncopen", str(victim), user=user, env=_env(arena, 99)).answer == "errno=EACCES"
    refused = confined(policy, "fs_probe", "truncopen", str(victim), user=user, env=_env(arena, 2))
    assert refused.returncode == 2 and "restricting truncation of files (truncate right) needs ABI 3" in refused.stderr, refused
    assert victim.read_text() == "keep\n"
    best = confined(policy, "fs_probe", "truncopen", str(victim), user=user, env=_env(arena, 2), run_args=("--best-effort",))
    assert best.answer == "ok"  # the kernel cannot stop it ...
    dry = confined(policy, "fs_probe", "truncopen", str(victim), user=user, env=_env(arena, 2), run_args=("--best-effort", "--dry-run"))
    assert "restricting truncation of files (truncate right) (needs Landlock ABI 3, kernel has 2)" in dry.stdout, dry.stdout  # ... and run says so


@pytest.mark.parametrize("user", USERS)
def test_a_device_ioctl_through_a_filtered_ioctl(arena: Path, probes: dict[str, Path], confined: Confined, user: str) -> None:
    """stdio allows ioctl TCGETS through Args: from ABI 5 Landlock keeps it
    from a device's driver (corral never grants ioctl_dev); below, it
    reaches the driver (a pty master answers)."""
    as_user(user)
    policy = policy_file(arena, f'Extends = ["base"]\n[Filesystem]\nExec = ["{probes["fs_probe"]}"]\nReadOnly = ["/dev/ptmx"]\n')
    assert confined(policy, "fs_probe", "ioctl", "/dev/ptmx", TCGETS, user=user, env=_env(arena, 99)).answer == "errno=EACCES"
    refused = confined(policy, "fs_probe", "ioctl", "/dev/ptmx", TCGETS, user=user, env=_env(arena, 4))
    assert refused.returncode == 2 and "restricting ioctl on devices (ioctl_dev right) needs ABI 5" in refused.stderr, refused
    best = confined(policy, "fs_probe", "ioctl", "/dev/ptmx", TCGETS, user=user, env=_env(arena, 4), run_args=("--best-effort",))
    assert best.answer == "ok"
    dry = confined(policy, "fs_probe", "ioctl", "/dev/ptmx", TCGETS, user=user, env=_env(arena, 4), run_args=("--best-effort", "--dry-run"))
    assert "restricting ioctl on devices (ioctl_dev right) (needs Landlock ABI 5, kernel has 4)" in dry.stdout, dry.stdout
