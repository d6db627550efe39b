"""Suggestions for error hints ("did you mean ...?") and key paths in
messages. No imports from the rest of corral, so that every module that
reports a problem can use it without an import cycle."""

from __future__ import annotations

from collections.abc import Iterable

from .locate import KeyPath


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """'did you mean 'x'?' for the closest option, or '' if none is close."""
    import difflib  # only on the error path: it costs ~10 ms to import

    opts = list(options)
    lowered = {o.lower(): o for o in opts}
    if word.lower() in lowered:
        return f"did you mean '{lowered[word.lower()]}'? (names are case-sensitive)"
    close = difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def dotted(path: KeyPath) -> str:
    """``("Flag", 0, "Name")`` -> ``Flag[0].Name`` for messages."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
