"""Learning: strace and audit logs in, valid policies out; and the round
trip: what `corral trace` wrote lets the same command run under `corral run`."""

from __future__ import annotations

import http.server
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corral.learn.auditlog import read_logs
from corral.learn.events import Capability, Collected, File, Port, SockOpt, Socket, Syscall
from corral.learn.merge import merge_text
from corral.learn.strace import read_strace
from corral.learn.synth import synthesize
from corral.policy import load_policy_text
from corral.policy import schema

WORK = Path(f"/srv/corral-learn-test-{os.getpid()}")  # one per test process: helpers run in parallel


def corral(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True, **kw)  # type: ignore[call-overload]


# -- readers ------------------------------------------------------------------

STRACE = """\
4321  execve("/usr/bin/curl", ["curl", "http://x"], 0x7ffc /* 3 vars */) = 0
4321  openat(AT_FDCWD</home/u>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>
4321  openat(AT_FDCWD</home/u>, "notes.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4</home/u/notes.txt>
4321  openat(AT_FDCWD</home/u>, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
4321  socket(AF_INET6, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 5<TCPv6:[99]>
4321  setsockopt(5<TCPv6:[99]>, SOL_TCP, TCP_USER_TIMEOUT, [30000], 4) = 0
4321  connect(5<TCPv6:[99]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>
4322  read(7</x>,  <unfinished ...>
4321  <... connect resumed>) = -1 EINPROGRESS (Operation now in progress)
4322  <... read resumed>"abc", 3) = 3
4321  mkdir("/run/app/cache", 0700) = 0
4321  +++ exited with 0 +++
"""


def test_strace_reader() -> None:
    c = Collected()
    read_strace(STRACE.splitlines(True), c)
    assert c.unknown == 0
    assert {e for e in c.events if isinstance(e, File)} == {
        File("/usr/bin/curl", "x") if not os.path.exists("/usr/bin/curl") else File(os.path.realpath("/usr/bin/curl"), "x"),
        File("/etc/ld.so.cache", "r"),
        File("/home/u/notes.txt", "n"),  # O_CREAT without O_EXCL, nothing said whether it existed
        File("/run/app/cache", "c"),
    }  # /nope failed: Landlock and AppArmor never see a missing path
    assert Socket("inet6", "stream") in c.events
    assert SockOpt("tcp_user_timeout") in c.events
    assert Port("connect", "tcp", 443) in c.events
    assert {Syscall("connect"), Syscall("read"), Syscall("mkdir")} <= set(c.events)


AUDIT = """\
{"__CURSOR": "s=1", "MESSAGE": "audit: type=1400 audit(1.0:1): apparmor=\\"ALLOWED\\" operation=\\"accept\\" profile=\\"n\\" pid=5 comm=\\"node\\" lport=8000 family=\\"inet6\\" sock_type=\\"stream\\" protocol=6 requested_mask=\\"accept\\" denied_mask=\\"accept\\"", "_PID": "5"}
Nov 22 10:00:01 host kernel: [ 1234.567890] audit: type=1400 audit(1700000000.123:456): apparmor="DENIED" operation="open" profile="agent" name="/etc/shadow" pid=123 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0
type=AVC msg=audit(1700000000.124:457): apparmor="ALLOWED" operation="capable" profile="agent" pid=124 comm="ping" capability=13  capname="net_raw"
type=AVC msg=audit(1700000000.124:458): apparmor="AUDIT" operation="open" profile="agent" name=2F746D702F6120622E747874 pid=1 comm="a" requested_mask="wc" fsuid=0 ouid=0
type=SECCOMP msg=audit(1700000000.125:458): auid=0 uid=0 gid=0 ses=1 pid=125 comm="curl" exe="/usr/bin/curl" sig=0 arch=c000003e syscall=54 compat=0 ip=0x7f0000 code=0x7ffc0000
[   99.1] audit: type=1326 audit(1700000000.126:459): auid=0 uid=0 gid=0 ses=1 pid=126 comm="x" exe="/x" sig=0 arch=c00000b7 syscall=56 compat=0 ip=0x1 code=0x7ffc0000
Nov 22 10:00:02 host kernel: audit: type=1400 audit(1700000000.2:460): apparmor="STATUS" operation="profile_load" profile="unconfined" name="agent" pid=9 comm="apparmor_parser"
this line is not a log line
"""


def test_audit_reader_formats() -> None:
    c = Collected()
    read_logs([AUDIT.splitlines(True)], c)
    assert File("/etc/shadow", "r") in c.events
    assert File("/tmp/a b.txt", "c") in c.events  # hex-encoded name
    assert Capability("net_raw") in c.events
    assert Syscall("setsockopt") in c.events  # x86_64 54
    assert Syscall("openat") in c.events  # aarch64 56
    assert Port("bind", "tcp", 8000) in c.events and Socket("inet6", "stream") in c.events
    assert (c.lines, c.unknown, c.samples) == (8, 1, ["<input>:8: this line is not a log line"])


def test_learn_cli_merges_keeps_comments_and_prints_a_diff(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(AUDIT)
    policy = tmp_path / "p.toml"
    policy.write_text('# my policy\nName = "p"\n\n[Filesystem]\n# read this\nReadOnly = ["/etc/hosts"]\n')
    mixed = corral("learn", str(log), "--into", str(policy), "--dry-run")
    assert mixed.returncode == 2 and "several profiles (agent, n)" in mixed.stderr and "--profile NAME" in mixed.stderr
    dry = corral("learn", str(log), "--into", str(policy), "--dry-run", "--profile", "agent")
    assert dry.returncode == 0, dry.stderr
    assert '+  "/etc/shadow",  # apparmor DENIED open x1' in dry.stdout
    assert "8000" not in dry.stdout  # profile n's bind stays out of agent's policy
    assert policy.read_text().startswith("# my policy")
    assert "/etc/shadow" not in policy.read_text()  # dry run wrote nothing
    assert "8 lines, " in dry.stderr and "1 lines not understood" in dry.stderr
    real = corral("learn", str(log), "--into", str(policy), "--profile", "agent")
    assert real.returncode == 0
    text = policy.read_text()
    assert text.startswith("# my policy\n") and "# read this" in text and '"/etc/hosts"' in text
    assert load_policy_text(text, "p.toml").get(schema.USER_CAPABILITIES)[0].value == "net_raw"
    again = corral("learn", str(log), "--into", str(policy), "--profile", "agent")
    assert "already allows everything" in again.stderr and policy.read_text() == text


def test_merge_never_removes() -> None:
    c = Collected()
    c.add(File("/srv/data/a", "r"), "test")
    merged = merge_text('[Filesystem]\nReadOnly = ["/etc/x"]\n', synthesize(c))
    policy = load_policy_text(merged)
    assert [i.value for i in policy.get(schema.FS_READ_ONLY)] == ["/etc/x", "/srv/data/a"]


def test_synth_suggests_a_private_runtime_directory() -> None:
    c = Collected()
    c.add(File("/tmp/work/out.txt", "c"), "openat")
    c.add(Syscall("openat"), "strace")
    from corral.learn.synth import render

    text = render(synthesize(c), name="t", description="t", header=[])
    assert '"/tmp/work/**",  # 1 file(s) created or removed here' in text
    assert "# NOTE: /tmp/work/** is in a shared, world-writable directory: a private runtime directory" in text
    load_policy_text(text)


def test_unicode_and_glob_characters_in_paths_are_escaped() -> None:
    c = Collected()
    c.add(File("/srv/a*b[1]/{x}", "r"), "openat")
    c.add(File('/srv/quote"d', "r"), "openat")
    from corral.learn.synth import render

    text = render(synthesize(c), name="t", description="t", header=[])
    policy = load_policy_text(text)
    assert [i.value for i in policy.get(schema.FS_READ_ONLY)] == ["/srv/a\\*b\\[1\\]/\\{x\\}"]


# -- round trips ------------------------------------------------------------------

pytestmark_root = pytest.mark.skipif(os.geteuid() != 0, reason="round trips write under /srv")


def trace_then_run(tmp_path: Path, cmd: list[str], reset: "callable | None" = None, **kw: object) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str], str]:  # type: ignore[valid-type]
    policy = tmp_path / "traced.toml"
    traced = corral("trace", "-o", str(policy), "--", *cmd, **kw)
    assert traced.returncode == 0, traced.stderr
    assert traced.stderr.startswith("corral trace: tracing with strace, every system call")
    assert corral("check", str(policy)).returncode == 0
    if reset:
        reset()
    # --best-effort: a traced Writable DIR/* must create names that do not exist yet,
    # which Landlock grants only as all of DIR (said, not silent)
    confined = corral("run", "-q", "--log", "--best-effort", str(policy), "--", *cmd, **kw)
    return traced, confined, policy.read_text()


@pytestmark_root
def test_round_trip_tar(tmp_path: Path) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "src/a").mkdir(parents=True)
    (WORK / "src/b").mkdir()
    (WORK / "src/a/x").write_text("1")
    (WORK / "src/b/y").write_text("2")
    subprocess.run(["tar", "-C", str(WORK), "-cf", str(WORK / "in.tar"), "src"], check=True)
    (WORK / "out").mkdir()

    def reset() -> None:
        shutil.rmtree(WORK / "out")
        (WORK / "out").mkdir()

    _, confined, text = trace_then_run(tmp_path, ["tar", "-C", str(WORK / "out"), "-xf", str(WORK / "in.tar")], reset)
    assert confined.returncode == 0, confined.stderr
    assert confined.stderr == "corral run --log: nothing was outside the policy's system calls\n"
    assert (WORK / "out/src/b/y").read_text() == "2"
    assert f'"{WORK}/*",  # in.tar is named on the command line: another run names another file here' in text


@pytestmark_root
def test_round_trip_git_commit(tmp_path: Path) -> None:
    repo = WORK / "repo"
    shutil.rmtree(WORK, ignore_errors=True)
    repo.mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=corral", "-c", "user.email=corral@example.invalid"]
    env = {**os.environ, "HOME": str(WORK), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    (repo / "f.txt").write_text("one\n")
    subprocess.run([*git, "add", "f.txt"], check=True, env=env)
    traced = corral("trace", "-o", str(tmp_path / "traced.toml"), "--", *git, "commit", "-q", "-m", "first", env=env)
    assert traced.returncode == 0, traced.stderr
    (repo / "f.txt").write_text("two\n")  # the same command with the same kind of input: a new commit
    subprocess.run([*git, "add", "f.txt"], check=True, env=env)
    confined = corral("run", "-q", "--log", str(tmp_path / "traced.toml"), "--", *git, "commit", "-q", "-m", "second", env=env)
    assert confined.returncode == 0, confined.stderr
    assert confined.stderr == "corral run --log: nothing was outside the policy's system calls\n"
    log = subprocess.run([*git, "log", "--format=%s"], capture_output=True, text=True, env=env, check=True).stdout
    assert log == "second\nfirst\n"


#: A loopback address of this run's own (127.x.y.z): parallel suites never
#: collide on the fixed ports the traced policies name.
LOOPBACK = "127.%d.%d.%d" % tuple(random.randrange(1, 255) for _ in range(3))


@pytest.fixture
def http_server() -> "http.server.HTTPServer":
    (WORK / "www").mkdir(parents=True, exist_ok=True)
    (WORK / "www/hello.txt").write_text("hello\n")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(WORK / "www"))  # noqa: E731
    server = http.server.ThreadingHTTPServer((LOOPBACK, 18080), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytestmark_root
def test_round_trip_curl(tmp_path: Path, http_server: object) -> None:
    cmd = ["curl", "-sS", f"http://{LOOPBACK}:18080/hello.txt"]
    traced, confined, text = trace_then_run(tmp_path, cmd)
    assert (confined.returncode, confined.stdout) == (0, "hello\n"), confined.stderr
    assert confined.stderr == "corral run --log: nothing was outside the policy's system calls\n"
    assert '"tcp:18080",  # connect x1' in text
    assert '"tcp_nodelay",  # setsockopt x1' in text


SERVE_ONE = f"import http.server, sys; s = http.server.HTTPServer(('{LOOPBACK}', 18081), http.server.SimpleHTTPRequestHandler); s.handle_request()"


def _serve_and_fetch(args: list[str], tmp: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    proc = subprocess.Popen(args, cwd=WORK / "www", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    body = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            import urllib.request

            body = urllib.request.urlopen(f"http://{LOOPBACK}:18081/hello.txt", timeout=5).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, out, err), body


@pytestmark_root
def test_round_trip_python_http_server(tmp_path: Path) -> None:
    (WORK / "www").mkdir(parents=True, exist_ok=True)
    (WORK / "www/hello.txt").write_text("hello\n")
    python = os.path.realpath(sys.executable)
    policy = tmp_path / "traced.toml"
    traced, body = _serve_and_fetch([sys.executable, "-m", "corral.cli", "trace", "-o", str(policy), "--", python, "-I", "-c", SERVE_ONE], tmp_path)
    assert traced.returncode == 0 and body == "hello\n", traced.stderr
    text = policy.read_text()
    assert '"tcp:18081",' in text and '"incoming",' in text
    confined, body = _serve_and_fetch([sys.executable, "-m", "corral.cli", "run", "-q", "--log", str(policy), "--", python, "-I", "-c", SERVE_ONE], tmp_path)
    assert confined.returncode == 0 and body == "hello\n", confined.stderr
    assert confined.stderr.endswith("corral run --log: nothing was outside the policy's system calls\n")


def test_fast_file_reader_counts_like_the_line_reader(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text(AUDIT * 50)
    from corral.learn.auditlog import read_log_files

    slow, fast, halves = Collected(), Collected(), Collected()
    read_logs([(AUDIT * 50).splitlines(True)], slow)
    read_log_files([str(log)], fast, chunk=1000)  # small chunks: lines split across reads
    read_log_files([str(log)], halves, chunk=777, parallel_from=0)  # split in two, second half in a fork
    assert fast.events == slow.events == halves.events
    assert (fast.lines, fast.unknown) == (slow.lines, slow.unknown) == (halves.lines, halves.unknown) == (400, 50)


def test_strace_order_survives_the_split(tmp_path: Path) -> None:
    """Unfinished/resumed pairs may straddle the middle of the file."""
    log = tmp_path / "big.strace"
    log.write_text(STRACE * 40)
    from corral.learn.auditlog import read_log_files

    one, two = Collected(), Collected()
    read_log_files([str(log)], one)
    read_log_files([str(log)], two, chunk=500, parallel_from=0)
    assert one.events == two.events and one.unknown == two.unknown == 0


@pytestmark_root
def test_trace_with_base_adds_only_what_is_missing(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text('Extends = ["base"]\n[Filesystem]\nExec = ["/usr/bin/cat"]\n')
    (WORK).mkdir(parents=True, exist_ok=True)
    (WORK / "data.txt").write_text("data\n")
    out = tmp_path / "more.toml"
    traced = corral("trace", "--base", str(base), "-o", str(out), "--", "cat", str(WORK / "data.txt"))
    assert traced.returncode == 0, traced.stderr
    assert "only what --base does not already allow (--seccomp-bpf" in traced.stderr
    text = out.read_text()
    assert 'Extends = ["./base.toml"]' in text
    assert f'"{WORK}/*",  # data.txt is named on the command line: another run names another file here' in text
    assert '"/usr/bin/cat"' not in text and "shared-libs" not in text  # the base has them
    confined = corral("run", "-q", str(out), "--", "cat", str(WORK / "data.txt"))
    assert (confined.returncode, confined.stdout) == (0, "data\n"), confined.stderr


def test_learn_reads_strace_files_through_the_cli(tmp_path: Path) -> None:
    trace = tmp_path / "app.strace"
    trace.write_text(STRACE)
    proc = corral("learn", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert "lines not understood" not in proc.stderr
    policy = load_policy_text(proc.stdout, "learned.toml")
    assert [i.value for i in policy.get(schema.NET_SOCKET_OPTIONS)] == ["tcp_user_timeout"]
    assert [i.value for i in policy.get(schema.NET_CONNECT)] == ["tcp:443"]
    assert "/run/app/**" in [i.value for i in policy.get(schema.FS_WRITABLE)]


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal `corral learn` draws a bar; to a pipe it stays quiet."""
    import pty

    log = tmp_path / "audit.log"
    log.write_text(AUDIT * 2000)
    main_fd, sub_fd = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "learn", str(log)], stdout=subprocess.DEVNULL, stderr=sub_fd, text=True)
    os.close(sub_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(main_fd)
    assert proc.returncode == 0
    assert b"[##############################] 100% of" in seen
    quiet = corral("learn", str(log))
    assert "[#" not in quiet.stderr
