"""Issue 14, outputs: a FIFO, a device, a directory or a link where a file
would go is refused (exit 2, C005) before anything is written; several
targets are written all or nothing; a full disk leaves no file (C006)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

AGENT = str(ROOT / "examples/agent-http2.toml")
CORRAL = str(Path(sys.executable).with_name("corral"))


def _compile(out: Path, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
    # a timeout, because the bug this guards against is a hang
    return subprocess.run([CORRAL, "compile", AGENT, "-o", str(out), *extra], capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload, no-any-return]


def _in_the_way(kind: str, target: Path) -> None:
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    elif kind == "dangling link":
        target.symlink_to(target.parent / "nowhere")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "dangling link"])
def test_what_is_not_a_regular_file_is_refused_before_anything_is_written(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _in_the_way(kind, out / "agent-http2.nft")  # the last target: every earlier one would have been written first
    proc = _compile(out)
    assert proc.returncode == 2, proc.stderr
    assert "error[C005]" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["agent-http2.nft"]


def test_a_file_as_output_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    proc = _compile(tmp_path / "f")
    assert proc.returncode == 2 and "error[C005]" in proc.stderr, proc.stderr


def test_a_refused_target_leaves_the_others_unwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "agent-http2.nft").write_text("edited by hand\n")
    proc = _compile(out)
    assert proc.returncode == 2 and "error[C004]" in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["agent-http2.nft"]


def _small_disk() -> None:
    """In the child: files stop growing at 8 KiB (EFBIG, as a full disk
    answers ENOSPC); the seccomp JSON and the Kubernetes objects are larger."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_a_full_disk_leaves_no_file_and_no_traceback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _compile(out, preexec_fn=_small_disk)
    assert proc.returncode == 2, proc.stderr
    assert "error[C006]" in proc.stderr and "nothing was written" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert list(out.iterdir()) == []  # no target, no temporary file


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_run_ignores_a_plan_cache_that_is_not_a_regular_file(kind: str, tmp_path: Path) -> None:
    """The cache is read before every run: a FIFO there hung corral run."""
    from corral.sandbox.plan import _cache_file

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    policy = tmp_path / "p.toml"
    policy.write_text((ROOT / "tests/policies/shell.toml").read_text())
    os.environ["XDG_CACHE_HOME"], saved = env["XDG_CACHE_HOME"], os.environ.get("XDG_CACHE_HOME")
    try:
        cache = Path(_cache_file(str(policy)) or "")
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    cache.parent.mkdir(parents=True)
    _in_the_way(kind, cache)
    proc = subprocess.run([CORRAL, "run", "-q", "--best-effort", str(policy), "--", "/usr/bin/true"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
