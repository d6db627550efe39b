"""Finding the external programs corral drives (apparmor_parser, strace, nft),
including in the sbin directories an ordinary user's PATH may lack, and
starting corral itself again."""

from __future__ import annotations

import os
import shutil
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
#: Seconds an apparmor_parser call may take: it never returned on some
#: inputs ("{,,,}", now refused at check); a profile compiles in well under one.
APPARMOR_PARSER_TIMEOUT = 60


def find(name: str) -> str | None:
    """The program's path, or None if it is not installed."""
    return shutil.which(name) or next((p for p in (os.path.join(d, name) for d in _SBIN) if os.access(p, os.X_OK)), None)


def run_apparmor_parser(args: list[str], timeout: float = APPARMOR_PARSER_TIMEOUT) -> "subprocess.CompletedProcess[str]":
    """``apparmor_parser ARGS`` with its stderr, bounded in time (``I008``)."""
    import subprocess

    from ._base import CorralError

    parser = find("apparmor_parser")
    if parser is None:
        raise CorralError("apparmor_parser is not installed", code="I001", hint="apt-get install apparmor")
    try:
        # stdout is not read: with -S the parser writes the binary policy there
        return subprocess.run([parser, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace", stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CorralError(f"apparmor_parser {' '.join(args)} did not finish within {timeout:g} seconds; nothing was changed by corral", code="I008", hint="this is a bug in corral's AppArmor backend or in apparmor_parser: please report the policy") from None


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
