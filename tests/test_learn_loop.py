"""One loop a user can trust: trace -> run --log-to -> learn --into -> run.

Real programs, real filters: the second run works, and `--log` then has
nothing left to report (convergence in one learning round)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("strace"), reason="needs root (setgid) and strace")
PYTHON = "/usr/bin/python3"


def corral(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture
def work() -> "Path":
    path = Path(f"/srv/corral-loop-{os.getpid()}")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


MORE = "import os, threading; t = threading.Thread(target=print, args=(os.getpriority(os.PRIO_PROCESS, 0),)); t.start(); t.join(); os.setgid(65534); print('ok')"


@pytest.mark.skipif(not os.path.exists(PYTHON), reason="needs /usr/bin/python3")
def test_trace_run_log_learn_run_converges(work: Path) -> None:
    policy = work / "py.toml"
    traced = corral("trace", "-o", str(policy), "--", PYTHON, "-I", "-c", "print(1)", cwd=work)
    assert traced.returncode == 0, traced.stderr
    # The program grows: a thread, a priority, and a group change (needs CAP_SETGID as root).
    refused = corral("run", "-q", str(policy), "--", PYTHON, "-I", "-c", MORE, cwd=work)
    assert refused.returncode != 0
    record = work / "run.jsonl"
    logged = corral("run", "-q", "--log-to", str(record), str(policy), "--", PYTHON, "-I", "-c", MORE, cwd=work)
    assert "setgid(65534) fails with EPERM without capability setgid" in logged.stderr
    assert 'add flag "plain-clone" to [Runtime] Flags (clone3)' in logged.stderr
    assert "namespaces" not in logged.stderr
    header = json.loads(record.read_text().splitlines()[0])
    assert header["corral_run_log"] == 1 and "Landlock's denials" in header["not_seen"]
    learned = corral("learn", str(record), "--into", str(policy), cwd=work)
    assert learned.returncode == 0, learned.stderr
    text = policy.read_text()
    assert '"plain-clone",' in text and '"setgid",  # corral run --log' in text and '"clone3"' not in text
    again = corral("run", "-q", str(policy), "--", PYTHON, "-I", "-c", MORE, cwd=work)
    assert (again.returncode, again.stdout.split()[-1:]) == (0, ["ok"]), again.stderr


def test_learn_into_a_missing_file_creates_it(work: Path) -> None:
    record = work / "r.jsonl"
    record.write_text('{"corral_run_log": 1, "policy": "p"}\n{"event": "call", "name": "getpid", "args": null, "count": 2}\n'
                      '{"event": "call", "name": "clone", "args": [268435473, 0, 0], "count": 1}\n')  # fmt: skip
    new = work / "new.toml"
    proc = corral("learn", str(record), "--into", str(new))
    assert proc.returncode == 0 and "created" in proc.stderr, proc.stderr
    text = new.read_text()
    assert '"getpid",' in text or '"stdio",' in text
    assert "namespaces" not in text.split("# NOTE")[0]  # a CLONE_NEWUSER clone is named, never granted
    assert "# NOTE: clone was refused; only the flag namespaces allows it" in text
    assert corral("check", str(new)).returncode == 0


def test_run_says_when_a_writable_path_is_missing(work: Path) -> None:
    """Landlock cannot grant a path that does not exist: a pid file a traced
    policy lists could never be created, and run used to be silent."""
    policy = work / "p.toml"
    policy.write_text(f'Extends = ["base"]\n[Filesystem]\nExec = ["{shutil.which("touch")}"]\nWritable = ["{work}/missing/x.pid"]\n')
    proc = corral("run", str(policy), "--", "touch", f"{work}/missing/x.pid")
    assert proc.returncode != 0
    assert f"writable paths that do not exist are not granted (Landlock cannot name them), so they cannot be created: {work}/missing/x.pid" in proc.stderr
    quiet = corral("run", "-q", str(policy), "--", "touch", f"{work}/missing/x.pid")
    assert "do not exist" not in quiet.stderr


@pytest.mark.skipif(not os.path.exists(PYTHON), reason="needs /usr/bin/python3")
def test_run_log_memory_stays_bounded_whatever_the_program_does(work: Path) -> None:
    """100k distinct refused calls (ioctl requests nobody defines) used to
    grow the supervisor by tens of MB; now it keeps a bounded record."""
    import resource

    policy = work / "py.toml"
    assert corral("trace", "-o", str(policy), "--", PYTHON, "-I", "-c", "print(1)", cwd=work).returncode == 0
    storm = "import ctypes, os, sys; r, w = os.pipe(); libc = ctypes.CDLL(None); [libc.ioctl(r, 0x10000000 + i, 0) for i in range(int(sys.argv[1]))]"

    def run(n: int) -> int:
        proc = corral("run", "-q", "--log", str(policy), "--", PYTHON, "-I", "-c", storm, str(n), cwd=work)
        assert proc.returncode == 0, proc.stderr
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far

    few = run(1000)
    many = run(100_000)
    assert many - few < 8 * 1024, (few, many)
