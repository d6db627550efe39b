"""Path tests shared by the rules."""

from __future__ import annotations

from ....policy import globs

SHARED_TMP = ("/tmp/", "/var/tmp/", "/dev/shm/")


def covers(grant_paths: tuple[str, ...], concrete: str) -> bool:
    """Whether any of the (expanded) globs matches a concrete path."""
    for p in grant_paths:
        try:
            if globs.matches(p, concrete):
                return True
        except (ValueError, IndexError):  # a glob from a hand-written profile we cannot model
            continue
    return False


def touches(grant_paths: tuple[str, ...], directory: str) -> bool:
    """Whether the globs reach into ``directory`` (which ends with '/'):
    they match something directly in it, or their fixed part lies inside it."""
    if covers(grant_paths, directory + "x"):
        return True
    for p in grant_paths:
        for alt in globs.expand(p) if "{" in p else (p,):
            if globs.literal_prefix(alt).startswith(directory):
                return True
    return False
