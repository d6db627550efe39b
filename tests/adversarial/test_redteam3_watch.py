"""Watching a denied directory, and reading what its files' inodes say.

Landlock denies opening and listing what no grant contains, but it does not
mediate inotify (or fanotify) watches: with ``inotify_add_watch`` allowed —
as a file watcher's traced policy has it — a confined program names a
denied directory and is told the name of every entry made, opened or
changed there, and when. Nothing here can refuse the watch by path, so the
coverage report must say it instead of "denies listing".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .harness import USERS, Confined, as_user, policy_file


@pytest.mark.parametrize("user", USERS)
def test_a_watch_on_a_denied_directory_is_said_in_the_coverage(arena: Path, probes: dict[str, Path], user: str) -> None:
    prefix = as_user(user)
    secret = arena / "secret"
    secret.mkdir()
    secret.chmod(0o755)
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "watch"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\nDeny = ["{secret}/**"]\n[Misc]\nSyscalls = ["inotify_init1", "inotify_add_watch", "poll"]\n')
    cmd = [*prefix, sys.executable, "-I", "-m", "corral.cli", "run", "-q", str(policy), "--", str(probe), "inotify", str(secret)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/", stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if first == "watching":
        time.sleep(0.2)
        (secret / "id_rsa.new").write_text("key\n")
    out, err = proc.communicate(timeout=30)
    leaked = "name=id_rsa.new" in out
    check = subprocess.run([sys.executable, "-I", "-m", "corral.cli", "check", "--json", str(policy)], capture_output=True, text=True, check=True)
    [deny] = [r for r in json.loads(check.stdout)["coverage"]["rules"] if r["rule"].startswith("deny ")]
    note = deny["selected"]["landlock"]["note"]
    if leaked:  # the kernel let the watch see the name: the report must not claim the listing is denied
        assert "inotify" in note and deny["selected"]["landlock"]["level"] != "exact", note
    else:
        assert first.startswith("errno="), first + out + err


@pytest.mark.parametrize("user", USERS)
def test_a_denied_files_extended_attributes_are_said_in_the_coverage(arena: Path, confined: Confined, probes: dict[str, Path], user: str) -> None:
    """getxattr (flag rpath, so every policy extending base) reads a value
    stored in a denied file's inode without opening it; Landlock does not
    mediate it. The report must not leave it at "denies opening"."""
    as_user(user)
    secret = arena / "secret"
    secret.mkdir()
    secret.chmod(0o755)
    target = secret / "notes"
    target.write_text("x\n")
    target.chmod(0o644)
    try:
        os.setxattr(target, "user.token", b"hunter2")
    except OSError:
        pytest.skip("the file system under /tmp keeps no user extended attributes")
    probe = probes["redteam3_probe"]
    policy = policy_file(arena, f'Name = "xattr"\nExtends = ["base"]\n[Filesystem]\nExec = ["{probe}"]\nDeny = ["{secret}/**"]\n')
    got = confined(policy, "redteam3_probe", "getxattr", str(target), "user.token", user=user)
    check = subprocess.run([sys.executable, "-I", "-m", "corral.cli", "check", "--json", str(policy)], capture_output=True, text=True, check=True)
    [deny] = [r for r in json.loads(check.stdout)["coverage"]["rules"] if r["rule"].startswith("deny ")]
    note = deny["selected"]["landlock"]["note"]
    if "value=hunter2" in got.stdout:  # the kernel handed the value over: the report must say so
        assert "getxattr" in note and "extended attribute values" in note, note
    else:
        assert got.answer.startswith("errno="), got
