"""redteam2: a log names a system directory through an alias, and learning
must still refuse to generalise over it.

A hostile program controls the paths it opens, so a trace (or a hand-made
strace log without -yy, which ``learn`` reads too) can show
``/proc/self/root/etc/passwd`` instead of ``/etc/passwd``, or a path
through a symlink it planted. The safety rules compared the text of the
directory; ``corral run`` opens the glob's matches through the kernel, so
``ReadOnly = ["/proc/self/root/etc/*"]`` granted ``/etc/shadow``. The
directory is judged by what it is on this host (its real path) as well as
by its text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corral.learn import safety
from corral.learn.events import Collected, File
from corral.learn.strace import read_strace
from corral.learn.synth import synthesize

ETC_FILES = ("hostname", "passwd", "group", "hosts", "issue")


def _aliases(tmp_path: Path) -> list[str]:
    link = tmp_path / "lnk"
    link.symlink_to("/etc")
    up = os.path.relpath("/", os.getcwd())  # /proc/self/cwd/../../.. reaches /
    return ["/proc/self/root/etc", "/proc/thread-self/root/etc", "/proc/self/root/./etc", str(link), f"/proc/self/cwd/{up}/etc", "/dev/fd/../root/etc"]


def _grants(out: object, key: str) -> list[str]:
    return [line.value for line in out.keys.get(("Filesystem", key), [])]  # type: ignore[attr-defined]


@pytest.mark.parametrize("index", range(6))
def test_reads_through_an_alias_of_etc_are_not_globbed(tmp_path: Path, index: int) -> None:
    alias = _aliases(tmp_path)[index]
    c = Collected()
    lines = [f'700 openat(AT_FDCWD, "{alias}/{name}", O_RDONLY) = 3\n' for name in ETC_FILES]
    read_strace(lines, c)
    out = synthesize(c, cwd=str(tmp_path / "work"))
    ro = _grants(out, "ReadOnly")
    assert not any(g.endswith("/*") or g.endswith("/**") for g in ro), ro
    # never silent: each file is granted one by one, or a note says why not
    assert len(ro) == len(ETC_FILES) or any(alias in n for n in out.notes), (ro, out.notes)


@pytest.mark.parametrize("target", ["/etc", "/root", "/"])
def test_safety_judges_the_real_directory(tmp_path: Path, target: str) -> None:
    link = tmp_path / "l"
    link.symlink_to(target)
    assert safety.refuse(str(link)) is not None
    assert safety.refuse(f"/proc/self/root{target}".rstrip("/") or "/") is not None


def test_own_proc_entries_stay_allowed() -> None:
    """Resolving /proc/self must not make the process's own entries look foreign."""
    assert safety.refuse("/proc/self") is None
    assert safety.refuse("/proc/self/fd") is None
    assert safety.refuse("/proc/thread-self") is None


def test_created_files_through_an_alias_do_not_make_etc_writable(tmp_path: Path) -> None:
    c = Collected()
    for name in ("a", "b"):
        c.add(File(f"/proc/self/root/etc/{name}", "c"), "mkdir")
    out = synthesize(c, cwd=str(tmp_path))
    assert not any(g.endswith("/**") for g in _grants(out, "Writable")), _grants(out, "Writable")


def test_learned_policy_never_lets_run_read_shadow(tmp_path: Path) -> None:
    """End to end: the log through learn, the policy through run's own plan."""
    log = tmp_path / "trace.log"
    log.write_text("".join(f'700 openat(AT_FDCWD, "/proc/self/root/etc/{n}", O_RDONLY) = 3\n' for n in ETC_FILES) + "700 exit_group(0) = ?\n")
    corral = [str(Path(sys.executable).with_name("corral"))]
    policy = tmp_path / "learned.toml"
    learned = subprocess.run([*corral, "learn", str(log), "--into", str(policy)], capture_output=True, text=True, cwd=tmp_path)
    assert learned.returncode == 0, learned.stderr
    dry = subprocess.run([*corral, "run", "--dry-run", "--best-effort", str(policy), "--", "/bin/true"], capture_output=True, text=True, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    granted = [line.split(":")[0].strip() for line in (dry.stdout + dry.stderr).splitlines() if re.match(r"^\s+/\S*: ", line)]
    assert granted and not any(g in ("/", "/etc", "/etc/shadow") for g in granted), granted


def test_a_file_name_that_looks_like_a_result_is_not_the_result() -> None:
    """A program names a file ``x) = 3</etc/shadow>``; strace 6.1 -yy prints
    the line below (it escapes < and > in the fd's path). The reader must
    take the file it opened, never /etc/shadow."""
    line = '12449 openat(AT_FDCWD</tmp/s>, "/tmp/s/x) = 3</etc/shadow>", O_RDONLY) = 3</tmp/s/x) = 3\\74/etc/shadow\\76>\n'
    c = Collected()
    read_strace([line], c)
    files = {e.path for e in c.events if isinstance(e, File)}
    assert files and "/etc/shadow" not in files, files
