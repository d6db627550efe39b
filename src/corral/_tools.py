"""Finding the external programs corral drives (apparmor_parser, strace, nft),
including in the sbin directories an ordinary user's PATH may lack."""

from __future__ import annotations

import os
import shutil

_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def find(name: str) -> str | None:
    """The program's path, or None if it is not installed."""
    return shutil.which(name) or next((p for p in (os.path.join(d, name) for d in _SBIN) if os.access(p, os.X_OK)), None)
