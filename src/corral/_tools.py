"""Finding the external programs corral drives (apparmor_parser, strace, nft),
including in the sbin directories an ordinary user's PATH may lack, and
starting corral itself again."""

from __future__ import annotations

import os
import shutil
import sys

_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def find(name: str) -> str | None:
    """The program's path, or None if it is not installed."""
    return shutil.which(name) or next((p for p in (os.path.join(d, name) for d in _SBIN) if os.access(p, os.X_OK)), None)


def corral_command() -> list[str]:
    """The command line that starts this corral's CLI in a new interpreter.

    Isolated (``python -I``): no working directory, script directory,
    PYTHON* variable or user site on the path, so a ``corral/`` planted in
    whatever directory the caller runs in is never imported (it would run
    unconfined, as the caller). The package is found where this process
    imported it from, and nowhere else first.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    boot = f"import sys; sys.path.insert(0, {here!r}); from corral.cli import main; sys.exit(main())"
    return [sys.executable, "-I", "-c", boot]
