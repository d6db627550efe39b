"""Issue 14: ``corral learn`` on 10M identical strace lines took 152 s and
2.0 GB, growing with every line (each line was kept for the line reader),
while the audit-log path stayed at 21 MB. What learning keeps must grow
with distinct events, processes and paths, never with lines; the speed is
measured in bench/learn_strace_bench.py, not here."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from corral.learn.auditlog import read_log_files
from corral.learn.events import Collected, File
from corral.learn.strace import MEMO_SIZE, StraceReader

LINE = '4242 openat(AT_FDCWD</srv/app>, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3</etc/hosts>\n'


def _tables(reader: StraceReader, c: Collected) -> tuple[int, ...]:
    return (len(c.events), len(c.evidence), len(reader.memo), len(reader.hits), len(reader.pending), len(reader.cwds), len(reader.absent), len(reader.present), len(reader.pids), len(c.samples), len(c.notes))


def test_the_strace_readers_tables_do_not_grow_with_repeated_lines() -> None:
    sizes = []
    for n in (1_000, 8_000):
        c = Collected()
        reader = StraceReader(c)
        for _ in range(n):
            assert reader.feed(LINE)
        reader.flush()
        assert c.events[File("/etc/hosts", "r")] == n  # every repeat counted
        sizes.append(_tables(reader, c))
    assert sizes[0] == sizes[1], sizes


def test_processes_that_come_and_go_leave_only_their_pid() -> None:
    """Each process's working directory and split call go when it exits."""
    c = Collected()
    reader = StraceReader(c)
    for pid in range(1000, 3000):
        reader.feed(f"{pid} chdir(\"/srv/{pid % 7}\") = 0\n")
        reader.feed(f'{pid} read(3</etc/hosts>, "x", 1 <unfinished ...>\n')
        reader.feed(f"{pid} +++ exited with 0 +++\n")
    assert len(reader.cwds) <= 1 and not reader.pending, (len(reader.cwds), reader.pending)
    assert len(reader.memo) <= MEMO_SIZE


def test_the_memo_reads_a_repeated_line_as_the_first_time() -> None:
    """A remembered line is only reused while nothing it depends on changed."""
    text = (
        '10 openat(AT_FDCWD, "x", O_RDONLY) = 3\n'
        '10 chdir("/b") = 0\n'
        '10 openat(AT_FDCWD, "x", O_RDONLY) = 3\n'  # the same line, another directory
        '10 openat(AT_FDCWD, "/srv/out", O_WRONLY|O_CREAT, 0666) = 3\n'
        '10 unlink("/srv/out") = 0\n'
        '10 newfstatat(AT_FDCWD, "/srv/out", 0x7ff, 0) = -1 ENOENT (No such file or directory)\n'
        '10 openat(AT_FDCWD, "/srv/out", O_WRONLY|O_CREAT, 0666) = 3\n'
    )
    c = Collected()
    reader = StraceReader(c, cwd="/a")
    for line in text.splitlines(True):
        reader.feed(line)
    reader.flush()
    files = {e for e in c.events if isinstance(e, File)}
    assert {File("/a/x", "r"), File("/b/x", "r"), File("/srv/out", "c")} <= files, files


def test_reading_a_file_of_strace_lines_keeps_no_line(tmp_path: Path) -> None:
    peaks = []
    for n in (20_000, 80_000):
        log = tmp_path / f"{n}.log"
        log.write_text(LINE * n)
        c = Collected()
        tracemalloc.start()
        read_log_files([str(log)], c, chunk=1 << 16)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert c.events[File("/etc/hosts", "r")] == n
    assert peaks[1] < peaks[0] + (256 << 10), peaks  # four times the lines, not four times the memory
