"""`corral run` end to end: a real program, confined, is the same process
with the same I/O and exit status; what the policy does not allow fails."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

SHELL = str(ROOT / "tests/policies/shell.toml")
AGENT = str(ROOT / "examples/agent-http2.toml")
WORK = Path("/run/corral-shell-test")


def corral(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)  # type: ignore[call-overload]


@pytest.fixture(autouse=True)
def workdir() -> None:
    WORK.mkdir(exist_ok=True)


def test_exit_status_and_output_pass_through() -> None:
    proc = corral("run", "-q", SHELL, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")


def test_stdin_passes_through() -> None:
    proc = corral("run", "-q", SHELL, "--", "cat", input="from stdin\n")
    assert (proc.returncode, proc.stdout) == (0, "from stdin\n")


def test_same_pid_and_signals_pass_through() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "corral.cli", "run", "-q", SHELL, "--", "sh", "-c", "echo $$; kill -TERM $$"], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert int(out) == proc.pid  # exec'd in place: CMD is the confined process
    assert proc.returncode == -signal.SIGTERM


def test_write_outside_the_policy_fails_with_eacces() -> None:
    proc = corral("run", "-q", SHELL, "--", "sh", "-c", "echo x > /root/corral-run-probe")
    assert proc.returncode == 2 and "Permission denied" in proc.stderr
    assert not Path("/root/corral-run-probe").exists()
    ok = corral("run", "-q", SHELL, "--", "sh", "-c", f"echo x > {WORK}/f && cat {WORK}/f")
    assert (ok.returncode, ok.stdout) == (0, "x\n")


def test_exec_outside_the_policy_fails() -> None:
    proc = corral("run", "-q", SHELL, "--", "sh", "-c", "ls /")
    assert proc.returncode == 126 and "Permission denied" in proc.stderr


def test_a_command_the_policy_cannot_start_is_refused_before_confinement() -> None:
    proc = corral("run", SHELL, "--", "ls", "/")
    assert proc.returncode == 2
    assert proc.stderr.startswith("corral run: error[R005]: ls could not start under this policy: the policy does not allow executing /usr/bin/ls (add it to Filesystem.Exec)")


def test_policy_errors_are_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[Runtime]\nFlags = ["stdoi"]\n')
    proc = corral("run", str(bad), "--", "true")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{bad}:2:10: error[E004]: unknown flag 'stdoi' in Runtime.Flags")
    assert "Traceback" not in proc.stderr


def test_usage_errors() -> None:
    assert corral("run").returncode == 2
    proc = corral("run", "--frobnicate", SHELL, "true")
    assert proc.returncode == 2 and "unknown option '--frobnicate'" in proc.stderr


def test_fail_closed_without_landlock() -> None:
    proc = corral("run", SHELL, "--", "true", env={"CORRAL_LANDLOCK_ABI": "0"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("corral run: error[R001]: this kernel has no Landlock (absent or disabled): filesystem rules needs ABI 1")
    assert "--best-effort" in proc.stderr


def test_fail_closed_when_the_abi_lacks_tcp_rules() -> None:
    proc = corral("run", "--dry-run", AGENT, env={"CORRAL_LANDLOCK_ABI": "3"})
    assert proc.returncode == 2
    assert "TCP port rules (Networking.Connect / Networking.Bind) needs ABI 4" in proc.stderr


def test_best_effort_runs_and_says_what_is_not_enforced() -> None:
    proc = corral("run", "--best-effort", SHELL, "--", "echo", "hi", env={"CORRAL_LANDLOCK_ABI": "0"})
    assert proc.returncode == 0 and proc.stdout == "hi\n"
    assert "not enforced here: filesystem rules (needs Landlock ABI 1, kernel has 0)" in proc.stderr


def test_best_effort_still_applies_seccomp_and_no_new_privs() -> None:
    proc = corral("run", "-q", "--best-effort", SHELL, "--", "cat", "/proc/self/status", env={"CORRAL_LANDLOCK_ABI": "0"})
    assert proc.returncode == 0  # without Landlock, /proc is readable ...
    status = dict(line.split(":\t", 1) for line in proc.stdout.splitlines() if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"  # ... but seccomp is on
    assert status["CapEff"].strip() == "0000000000000000"


def test_dry_run_describes_every_mechanism() -> None:
    proc = corral("run", "--dry-run", AGENT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"corral run: policy 'agent-http2' ({AGENT})\n  no_new_privs: set\n  capabilities: keep none")
    assert "    connect_tcp: 53, 443" in out
    assert "  seccomp: " in out and "built by libseccomp" in out
    assert "log writes to /etc/**" in out  # AppArmor-only: said, not silently dropped


@pytest.fixture
def h2_server(tmp_path: Path):
    """nghttpd serving HTTP/2 over TLS on port 443 of a loopback address of
    its own (127.x.y.z, so parallel runs never collide), as api.example.com:
    a hosts file (test-only, docs/egress.md) makes the name resolve there for
    the egress supervisor. Yields that address."""
    if os.geteuid() != 0:
        pytest.skip("binding port 443 needs root")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=api.example.com", "-addext", "subjectAltName=DNS:api.example.com"], check=True, capture_output=True)
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "index.html").write_text("hello over h2\n")
    address = "127.%d.%d.%d" % tuple(random.randrange(1, 255) for _ in range(3))
    server = subprocess.Popen(["nghttpd", "-d", str(docroot), f"--address={address}", "443", str(key), str(cert)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, 443), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        server.kill()
        pytest.fail(f"nghttpd did not start on {address}:443")
    (tmp_path / "hosts").write_text(f"{address} api.example.com\n")
    os.environ["CORRAL_EGRESS_HOSTS"] = str(tmp_path / "hosts")
    yield address
    del os.environ["CORRAL_EGRESS_HOSTS"]
    server.terminate()
    server.wait(timeout=10)


def test_agent_speaks_http2_to_443_and_nothing_else(h2_server: str) -> None:
    policy = str(ROOT / "tests/policies/agent-curl.toml")
    curl = ["curl", "-sS", "-k", "--http2", "--max-time", "10", "-o", "-", "-w", "\n%{http_version}"]
    resolve = ["--resolve", f"api.example.com:443:{h2_server}"]
    ok = corral("run", "-q", policy, "--", *curl, *resolve, "https://api.example.com/index.html")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "hello over h2\n\n2"  # the body, then HTTP version 2
    raw = corral("run", "-q", policy, "--", *curl, f"https://{h2_server}/index.html")
    assert raw.returncode != 0 and "no server name (SNI)" in raw.stderr  # the address, but not by name
    old = corral("run", "-q", policy, "--", *curl[:3], "--http1.1", *resolve, "https://api.example.com/index.html")
    assert old.returncode != 0 and "Networking.ALPN requires h2" in old.stderr
    with socket.create_server((h2_server, 0)) as listener:  # something is there to connect to, on a port the policy does not name
        port = listener.getsockname()[1]
        unconfined = subprocess.run([*curl, f"https://{h2_server}:{port}/"], capture_output=True, text=True, timeout=30)
        assert unconfined.returncode != 7  # it connected (then TLS failed)
        other = corral("run", "-q", policy, "--", *curl, f"https://{h2_server}:{port}/")
        assert other.returncode == 7, other.stderr  # curl: could not connect: the supervisor said EACCES
        assert f"port {port} is not allowed for tcp by Networking.Connect" in other.stderr
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()[0].close()  # the unconfined connection was accepted earlier ...
            listener.accept()  # ... the confined one never arrived


def test_verify_passes_on_the_agent_example() -> None:
    Path("/run/agent-http2").mkdir(exist_ok=True)
    proc = corral("verify", AGENT)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.rstrip().endswith("25 passed, 0 failed")  # 10 compiled targets and 15 tests


def test_verify_fails_when_an_expectation_is_wrong(tmp_path: Path) -> None:
    policy = tmp_path / "wrong.toml"
    policy.write_text('[Runtime]\nFlags = ["stdio"]\n[[Test]]\nName = "claims raw sockets are fine"\nProbe = "raw-socket"\nExpect = "allow"\n')
    proc = corral("verify", "--json", str(policy))
    assert proc.returncode == 1
    import json

    result = json.loads(proc.stdout)
    assert result["failed"] == 1
    assert result["tests"] == [{"what": "claims raw sockets are fine", "expect": "allow", "got": "deny", "detail": "EPERM", "span": f"{policy}:3:3", "ok": False}]


def test_log_mode_keeps_deny_syscalls_refused(tmp_path: Path) -> None:
    policy = tmp_path / "learn.toml"
    policy.write_text(f'Extends = ["{SHELL}"]\n[Misc]\nDenySyscalls = ["getppid"]\n')
    enforced = corral("run", "-q", str(policy), "--", "sh", "-c", "echo $PPID; exit 4")
    assert (enforced.returncode, enforced.stdout) == (4, "-1\n")  # getppid: EPERM, dash says -1
    learning = corral("run", "-q", "--log", str(policy), "--", "sh", "-c", "echo $PPID; exit 4")
    assert (learning.returncode, learning.stdout) == (4, "-1\n")  # denied in words: refused in learning mode too
    assert learning.stderr == (
        "corral run --log: 1 call(s) the policy would have denied:\n"
        "  getppid is denied by Misc.DenySyscalls: remove it there to allow it  x1\n"
    )


def test_log_mode_names_socket_options_and_flags(tmp_path: Path) -> None:
    policy = tmp_path / "learn.toml"
    policy.write_text(f'Extends = ["{AGENT}"]\n[Filesystem]\nExec = ["/usr/bin/curl"]\n')
    proc = corral("run", "-q", "--log", str(policy), "--", "curl", "-s", "--max-time", "5", "--tcp-fastopen", "http://127.0.0.1:443/")
    assert "setsockopt: refused by guard fastopen (" in proc.stderr and "flag fastopen lifts it" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to an unprivileged user first")
def test_works_unprivileged() -> None:
    """As nobody, with no capabilities at all: Landlock and seccomp still apply."""
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
    (WORK / "hello").write_text("hello\n")
    (WORK / "hello").chmod(0o644)
    ok = subprocess.run([*nobody, sys.executable, "-m", "corral.cli", "run", "-q", SHELL, "--", "cat", str(WORK / "hello")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert (ok.returncode, ok.stdout) == (0, "hello\n"), ok.stderr
    denied = subprocess.run([*nobody, sys.executable, "-m", "corral.cli", "run", "-q", SHELL, "--", "cat", "/etc/passwd"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert denied.returncode == 1 and denied.stderr == "cat: /etc/passwd: Permission denied\n"
