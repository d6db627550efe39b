"""Shared pieces of the adversarial suite: what a confined attack produced,
and how to lay out a policy every user can read."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
USERS = ("root", "nobody")


@dataclass(frozen=True)
class Outcome:
    """What one confined attack produced."""

    returncode: int
    answer: str  # the probe's last stdout token: "ok", "errno=EACCES", ...
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.answer == "ok"


Confined = Callable[..., Outcome]


def as_user(user: str) -> list[str]:
    """The command prefix that runs as ``user`` ("root" or "nobody")."""
    if user == "root":
        return []
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switching to nobody needs root and setpriv")
    return NOBODY


def policy_file(arena: Path, text: str, name: str = "attack.toml") -> Path:
    """Write a policy where nobody can read it too (the run as nobody loads it)."""
    path = arena / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def arrivals(listener: socket.socket) -> int:
    """How many connections reached ``listener`` (a forbidden peer), accepted
    until its timeout runs out; the listener is closed afterwards."""
    reached = 0
    try:
        while True:
            conn, _ = listener.accept()
            conn.close()
            reached += 1
    except OSError:
        pass
    listener.close()
    return reached
