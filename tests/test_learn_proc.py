"""Learned paths are what the kernel checks, not the alias a program chose.

* A literal read through ``/proc/self/root/...`` (or ``/proc/PID/root``,
  ``/proc/self/cwd``, ``//``, ``/./``, ``/dev/fd/..``) was granted as
  written, with no sensitive-path note: ``/proc/self/root/etc/shadow``
  passed where ``/etc/shadow`` is flagged. Every file event is now
  restated by its canonical path before it is judged or granted.
* Only the reading line's own pid was mapped to ``/proc/self``: a thread
  reading its process's entries, a process whose line carries no pid, and
  a parent reading its child's entries kept literal pids, which are
  different the next run (and may be anyone's then). Each traced process's
  own entries become ``/proc/self`` (a thread's ``/proc/thread-self``); the
  entries of another process of the trace are not granted, with a note.
"""

from __future__ import annotations

from corral.learn.events import Collected, File
from corral.learn.strace import read_strace
from corral.learn.synth import Additions, synthesize


def _granted(out: Additions) -> set[str]:
    return {line.value for key in ("ReadOnly", "Writable") for line in out.keys.get(("Filesystem", key), [])}


ALIASES = ("/proc/self/root/etc/shadow", "//etc/shadow", "/./etc/./shadow", "/proc/1/root/etc/shadow", "/proc/self/task/9/root/etc/shadow", "/dev/fd/../root/etc/shadow", "/usr/../etc/shadow")


def test_a_literal_read_through_an_alias_is_granted_and_judged_as_what_it_is() -> None:
    for alias in ALIASES:
        c = Collected()
        read_strace([f'700 openat(AT_FDCWD, "{alias}", O_RDONLY) = 3\n'], c)
        out = synthesize(c, cwd="/srv/work")
        assert _granted(out) == {"/etc/shadow"}, (alias, _granted(out))
        assert any("/etc/shadow" in n and "sensitive" in n for n in out.notes), (alias, out.notes)


def test_events_of_any_source_are_restated_canonically() -> None:
    """Not only strace: a run record or a hand-made log names paths too."""
    c = Collected()
    c.add(File("/proc/self/root/etc/sudoers", "r"), "apparmor ALLOWED open")
    c.add(File("/proc/self/cwd/out.txt", "w"), "landlock denied fs.write_file")
    out = synthesize(c, cwd="/srv/work")
    assert _granted(out) == {"/etc/sudoers", "/srv/work/out.txt"}, _granted(out)
    assert any("/etc/sudoers" in n and "sensitive" in n for n in out.notes), out.notes


def test_a_directory_through_an_alias_is_not_globbed() -> None:
    c = Collected()
    for name in ("a", "b", "c", "d", "e"):
        c.add(File(f"//etc/ssh/{name}", "r"), "openat")
    out = synthesize(c, cwd="/srv/work")
    assert not any(g.endswith("*") for g in _granted(out)), _granted(out)
    assert _granted(out) == {f"/etc/ssh/{n}" for n in "abcde"}, _granted(out)


TREE = """\
100 openat(AT_FDCWD</>, "/proc/100/stat", O_RDONLY) = 3</proc/100/stat>
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD) = 101
101 openat(AT_FDCWD</>, "/proc/101/stat", O_RDONLY) = 3</proc/101/stat>
101 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, stack=0x7f0, stack_size=0x7ff00}, 88) = 102
102 openat(AT_FDCWD</>, "/proc/101/status", O_RDONLY) = 4</proc/101/status>
102 openat(AT_FDCWD</>, "/proc/101/task/102/comm", O_RDONLY) = 5</proc/101/task/102/comm>
101 openat(AT_FDCWD</>, "/proc/self/task/102/comm", O_RDONLY) = 6</proc/101/task/102/comm>
100 openat(AT_FDCWD</>, "/proc/101/cmdline", O_RDONLY) = 4</proc/101/cmdline>
101 openat(AT_FDCWD</>, "/proc/100/environ", O_RDONLY) = 7</proc/100/environ>
101 openat(AT_FDCWD</>, "/proc/1/cmdline", O_RDONLY) = 8</proc/1/cmdline>
101 openat(AT_FDCWD</>, "/proc/self/root/proc/101/maps", O_RDONLY) = 9</proc/101/maps>
"""


def test_every_traced_process_maps_its_own_proc_entries() -> None:
    c = Collected()
    read_strace(TREE.splitlines(True), c)
    files = {e.path for e in c.events if isinstance(e, File)}
    assert files == {"/proc/self/stat", "/proc/self/status", "/proc/thread-self/comm", "/proc/1/cmdline", "/proc/self/maps"}, files
    notes = "\n".join(c.notes)
    assert "/proc/101/cmdline: process 100 read its child's /proc entries" in notes, notes
    assert "/proc/100/environ: process 101 read its parent's /proc entries" in notes, notes
    assert "/proc/self/task/102/comm: another thread's /proc entries" in notes, notes
    out = synthesize(c)
    assert not any(g.startswith("/proc/10") for g in _granted(out)), _granted(out)
    assert all(n in out.notes for n in c.notes)  # the learner prints them


def test_a_line_without_a_pid_keeps_the_proc_self_the_program_named() -> None:
    """strace -f to a terminal prints the first process's lines without a
    pid until it forks; -yy shows /proc/<its pid>/..., which nothing maps."""
    c = Collected()
    read_strace(['openat(AT_FDCWD</>, "/proc/self/stat", O_RDONLY) = 3</proc/555/stat>\n'], c)
    assert {e.path for e in c.events if isinstance(e, File)} == {"/proc/self/stat"}


def test_apparmor_events_map_the_tasks_own_entries() -> None:
    from corral.learn.auditlog import read_logs

    line = 'audit: type=1400 audit(1700000000.123:77): apparmor="ALLOWED" operation="open" profile="web" name="/proc/4242/stat" pid=4242 comm="web" requested_mask="r" denied_mask="r" fsuid=0 ouid=0\n'
    c = Collected()
    read_logs([[line]], c)
    assert File("/proc/self/stat", "r") in c.events, c.events
