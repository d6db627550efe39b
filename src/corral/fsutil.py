"""Writing files without ever leaving one half-written or silently replaced."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import CorralError


class FileExistsCorralError(CorralError):
    """The target file exists with other content and replacing was not asked for."""

    code = "C004"


def write_atomic(path: Path, data: bytes, *, force: bool = False, mode: int = 0o644) -> str:
    """Write ``data`` to ``path`` atomically; return "written", "replaced" or "unchanged".

    The data goes to a temporary file in the same directory, is flushed to
    disk, then renamed over ``path``: a reader sees the old file or the new
    one, never a mix. An existing file with different content is replaced
    only when ``force`` is set.
    """
    existed = path.exists()
    if existed:
        if path.read_bytes() == data:
            return "unchanged"
        if not force:
            raise FileExistsCorralError("exists with other content", hint="pass --force to replace it", span=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return "replaced" if existed else "written"
