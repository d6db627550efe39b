"""Writing files without ever leaving one half-written or silently replaced.

An output path is checked before anything is written: it must be a regular
file or absent. A FIFO would hang the writer (it reads the old content to
compare), ``/dev/zero`` would be read until memory runs out, a directory or
a dangling symlink cannot be replaced sensibly: each is refused (``C005``).
The old content is read only when it has the new content's size, and never
more than that. Several files are written all or nothing (``write_all``):
every path is checked, then every file is written to a temporary file
beside it, then each is renamed into place; a full disk leaves no file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import CorralError


class FileExistsCorralError(CorralError):
    """The target file exists with other content and replacing was not asked for."""

    code = "C004"


class OutputPathError(CorralError):
    """The output path is not a regular file or a place for one."""

    code = "C005"


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"


def _same_content(path: Path, data: bytes) -> bool:
    """Whether the regular file at ``path`` holds exactly ``data``, reading
    at most ``len(data) + 1`` bytes through a descriptor that follows no link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"is {_kind(st.st_mode)}", hint="write to a regular file or a new name", span=path)
        if st.st_size != len(data):
            return False
        chunks, left = [], len(data) + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks) == data
    finally:
        os.close(fd)


def check_target(path: Path, data: bytes, *, force: bool = False) -> str:
    """What writing ``data`` to ``path`` would do ("written", "replaced",
    "unchanged"), or raise before anything is written if it may not."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"cannot use this output path: {exc.strerror}", hint="check the path", span=path) from None
    if st is None:
        parent = path.parent
        while not parent.exists() and parent != parent.parent:  # created by the write, below an existing directory
            parent = parent.parent
        if not parent.is_dir() or os.path.islink(path):
            raise OutputPathError(f"{parent} is not a directory", hint="write into a directory", span=path)
        return "written"
    if stat.S_ISLNK(st.st_mode):
        target = "a dangling symlink" if not path.exists() else "a symlink"
        raise OutputPathError(f"is {target}: corral does not write through links", hint="write to the link's target, or remove the link", span=path)
    if not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"is {_kind(st.st_mode)}", hint="write to a regular file or a new name", span=path)
    try:
        same = _same_content(path, data)
    except OSError as exc:
        raise OutputPathError(f"cannot read the existing file: {exc.strerror}", hint="check its permissions", span=path) from None
    if same:
        return "unchanged"
    if not force:
        raise FileExistsCorralError("exists with other content", hint="pass --force to replace it", span=path)
    return "replaced"


def _temp_beside(path: Path, data: bytes, mode: int) -> str:
    """``data`` in a new temporary file in ``path``'s directory, on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_all(files: list[tuple[Path, bytes]], *, force: bool = False, mode: int = 0o644) -> list[str]:
    """Write every file or none; return each one's state, in order.

    Every path is checked first (``check_target``); then every file goes to
    a temporary file beside its target; only when all are on disk is each
    renamed over its target. An error (a full disk) removes the temporary
    files and raises ``C006`` with nothing replaced.
    """
    states = [check_target(path, data, force=force) for path, data in files]
    temps: list[tuple[str, Path]] = []
    try:
        for (path, data), state in zip(files, states):
            if state != "unchanged":
                temps.append((_temp_beside(path, data, mode), path))
    except OSError as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        where = getattr(exc, "filename", None) or (files[len(temps)][0] if len(temps) < len(files) else None)
        raise CorralError(f"cannot write: {exc.strerror}; nothing was written", code="C006", hint="free space or choose another directory (-o)", span=where) from None
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in temps:
        os.replace(tmp, path)
    return states


def write_atomic(path: Path, data: bytes, *, force: bool = False, mode: int = 0o644) -> str:
    """Write ``data`` to ``path`` atomically; return "written", "replaced" or "unchanged".

    The data goes to a temporary file in the same directory, is flushed to
    disk, then renamed over ``path``: a reader sees the old file or the new
    one, never a mix. An existing file with different content is replaced
    only when ``force`` is set.
    """
    return write_all([(path, data)], force=force, mode=mode)[0]


def read_input(path: str | Path, hint: str, limit: int = -1) -> bytes:
    """The bytes of an input file (an imported profile or seccomp JSON; its
    first LIMIT bytes when given), refused (F001) unless it is a regular
    file: ``/dev/zero`` was read until memory ran out, a FIFO would hang.
    Opened without blocking, checked on the open descriptor (no race with a
    rename)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise CorralError(f"cannot read: {exc.strerror}", code="F001", hint="check the path and its permissions", span=str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorralError(f"not a regular file ({_kind(mode)})", code="F001", hint=hint, span=str(path))
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(limit)
    finally:
        os.close(fd)
