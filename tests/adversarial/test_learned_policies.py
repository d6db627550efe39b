"""Learned policies, tried as a new user would and as an attacker would.

Each program below (none of the four the first round trips used) is traced
once with `corral trace`, then run under `corral run` with the policy it
produced: again in the state the first run left, in a fresh state, and
with a variation a user expects to work. Then, under the same learned
policy, a static probe tries what no learned policy may allow: reading
/etc/shadow, writing into $HOME, connecting to a port the program never
used, running /bin/sh. The probe is added to the policy only as an
executable with the system calls it needs; every path, port and exec
grant is the learned policy's own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .harness import Confined, policy_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("strace") is None, reason="traces as root with strace")


def corral(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-m", "corral.cli", *args], capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


PORT = _free_port()
#: ImageMagick's own convert (dev.sh installs imagemagick), not a stand-in earlier on PATH.
CONVERT = "/usr/bin/convert"


def _client(port: int, payload: bytes) -> threading.Thread:
    """Connect (retrying while the server starts) and send PAYLOAD."""

    def go() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(payload)
                    return
            except OSError:
                time.sleep(0.05)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Program:
    """A program, the state it starts from, and what "it worked" means."""

    name: str
    needs: str
    setup: Callable[[Path], None]
    cmd: list[str]
    variation: list[str]
    works: Callable[[Path, subprocess.CompletedProcess[str]], bool]
    client: bytes = b""  # for a server: what a client sends while it runs
    env: dict[str, str] = field(default_factory=dict)


def _files(*names: str) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        for i, name in enumerate(names):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(f"line {i} of {name}\n" * 50)

    return setup


def _json(work: Path) -> None:
    (work / "in.json").write_text(json.dumps({"a": 1, "b": [1, 2, 3]}))
    (work / "in2.json").write_text(json.dumps({"a": "two", "b": ["x"]}))


def _image(work: Path) -> None:
    subprocess.run([CONVERT, "-size", "8x8", "xc:red", str(work / "in.png")], check=True, capture_output=True)


def _tree(work: Path) -> None:
    _files("src/a.txt", "src/sub/b.txt")(work)
    (work / "dst").mkdir()


def _ok(work: Path, proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 0


PROGRAMS = [
    Program("sqlite3", "sqlite3", lambda w: None, ["sqlite3", "db.sqlite", "create table if not exists t(x); insert into t values(1); select count(*) from t;"],
            ["sqlite3", "db.sqlite", "select sum(x) from t;"], lambda w, p: p.returncode == 0 and p.stdout.strip().isdigit()),
    Program("gzip", "gzip", _files("a.txt", "b.txt"), ["gzip", "-k", "-f", "a.txt"], ["gzip", "-k", "-f", "b.txt"],
            lambda w, p: p.returncode == 0 and (w / "a.txt.gz").exists()),
    Program("xz", "xz", _files("a.txt", "b.txt"), ["xz", "-T2", "-k", "-f", "a.txt"], ["xz", "-T2", "-k", "-f", "b.txt"],
            lambda w, p: p.returncode == 0 and (w / "a.txt.xz").exists()),
    Program("zstd", "zstd", _files("a.txt", "b.txt"), ["zstd", "-q", "-f", "a.txt", "-o", "a.txt.zst"], ["zstd", "-q", "-f", "b.txt", "-o", "b.txt.zst"],
            lambda w, p: p.returncode == 0 and (w / "a.txt.zst").exists()),
    Program("jq", "jq", _json, ["jq", ".a", "in.json"], ["jq", "-c", ".b[]", "in2.json"], lambda w, p: p.returncode == 0 and p.stdout != ""),
    Program("convert", CONVERT, _image, [CONVERT, "in.png", "out.png"], [CONVERT, "in.png", "-resize", "4x4", "small.png"],
            lambda w, p: p.returncode == 0 and (w / "out.png").exists()),
    Program("rsync", "rsync", _tree, ["rsync", "-a", "src/", "dst/"], ["rsync", "-a", "--delete", "src/", "dst/"],
            lambda w, p: p.returncode == 0 and (w / "dst/sub/b.txt").exists()),
    Program("openssl", "openssl", _files("a.txt", "b.txt"), ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:k", "-in", "a.txt", "-out", "a.enc"],
            ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:k", "-in", "b.txt", "-out", "b.enc"], lambda w, p: p.returncode == 0 and (w / "a.enc").exists()),
    Program("perl", "perl", _files("a.txt", "b.txt"), ["perl", "-pi", "-e", "s/line/LINE/", "a.txt"], ["perl", "-pi", "-e", "s/of/OF/", "b.txt"], _ok),
    Program("sed", "sed", _files("a.txt", "b.txt"), ["sed", "-i", "s/line/row/", "a.txt"], ["sed", "-i", "-e", "s/of/in/", "b.txt"], _ok),
    Program("zip", "zip", _files("a.txt", "b.txt"), ["zip", "-q", "out.zip", "a.txt"], ["zip", "-q", "out.zip", "b.txt"],
            lambda w, p: p.returncode == 0 and (w / "out.zip").exists()),
    Program("find", "find", _tree, ["find", ".", "-name", "*.txt"], ["find", "src", "-type", "f", "-newer", "src/a.txt"], _ok),
    Program("busybox-nc", "busybox", lambda w: None, ["busybox", "nc", "-l", "-p", str(PORT)], ["busybox", "nc", "-l", "-p", str(PORT), "-w", "20"],
            lambda w, p: p.returncode == 0 and "hello" in p.stdout, client=b"hello\n"),
]  # fmt: skip


@pytest.fixture
def work(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = Path(f"/srv/corral-learned-{os.getpid()}")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(path.with_name(path.name + "-policy"), ignore_errors=True)


def _fresh(work: Path, program: Program) -> None:
    for entry in work.iterdir():
        if entry.name != "policy":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    program.setup(work)


def _run(args: list[str], program: Program, work: Path) -> subprocess.CompletedProcess[str]:
    client = _client(PORT, program.client) if program.client else None
    proc = corral(*args, cwd=work, env={**os.environ, **program.env}, stdin=subprocess.DEVNULL)
    if client is not None:
        client.join(timeout=30)
    return proc


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_a_learned_policy_works_again_and_holds(program: Program, work: Path, confined: Confined, probes: dict[str, Path]) -> None:
    if shutil.which(program.needs) is None:
        pytest.skip(f"{program.needs} is not installed (bash dev.sh setup installs it)")
    # Beside the work directory, not in it: a policy inside a tree it makes
    # writable is refused (the program could rewrite it; test_persistence).
    home_of_policy = work.with_name(work.name + "-policy")
    home_of_policy.mkdir()
    policy = home_of_policy / f"{program.name}.toml"
    program.setup(work)
    traced = _run(["trace", "-o", str(policy), "--", *program.cmd], program, work)
    assert traced.returncode == 0, traced.stderr
    text = policy.read_text()

    again = _run(["run", "-q", str(policy), "--", *program.cmd], program, work)
    assert program.works(work, again), f"same state:\n{again.stderr}\n{text}"
    _fresh(work, program)
    fresh = _run(["run", "-q", str(policy), "--", *program.cmd], program, work)
    assert program.works(work, fresh), f"fresh state:\n{fresh.stderr}\n{text}"
    varied = _run(["run", "-q", str(policy), "--", *program.variation], program, work)
    assert varied.returncode == 0, f"variation:\n{varied.stderr}\n{text}"

    # The attacker's side, under the same learned grants.
    wrapper = policy_file(home_of_policy, (
        f'Extends = ["./{policy.name}"]\n'
        '[Runtime]\nFlags = ["stdio", "exec", "malloc"]\n'
        '[Filesystem]\nFlags = ["rpath", "wpath", "cpath"]\n'
        f'Exec = ["{probes["learned_probe"]}"]\n'
        '[Misc]\nSyscalls = ["socket", "connect"]\n'  # socket stays limited to the learned protocols
    ), name="attack.toml")  # fmt: skip
    home = os.path.expanduser("~")
    other_port = "9" if str(PORT) != "9" else "7"
    for attack in (("read", "/etc/shadow"), ("write", f"{home}/corral-learned-attack"), ("connect", "127.0.0.1", other_port), ("exec", "/bin/sh")):
        outcome = confined(wrapper, "learned_probe", *attack)
        assert outcome.answer in ("errno=EACCES", "errno=EPERM"), (program.name, attack, outcome)
    assert not os.path.exists(f"{home}/corral-learned-attack")
