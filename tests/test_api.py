"""The Python API: the same enforcement and the same errors as the CLI."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from corral import PolicyError, Sandbox, SandboxError

SHELL = ROOT / "tests/policies/shell.toml"


@pytest.fixture(autouse=True)
def workdir() -> None:
    Path("/run/corral-shell-test").mkdir(exist_ok=True)


def test_popen_is_the_confined_program() -> None:
    box = Sandbox(SHELL)
    proc = box.popen(["sh", "-c", "echo $$; cat /etc/shadow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    assert int(out) == proc.pid
    assert proc.returncode == 1 and err == "cat: /etc/shadow: Permission denied\n"


def test_run_like_subprocess_run() -> None:
    result = Sandbox(SHELL).run(["cat"], input="piped\n", capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "piped\n")
    with pytest.raises(subprocess.CalledProcessError):
        Sandbox(SHELL).run(["false"], check=True)


def test_same_errors_as_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[Filesystem]\nWritable = ["/a}b"]\n')
    with pytest.raises(PolicyError) as info:
        Sandbox(bad)
    assert str(info.value).startswith(f"{bad}:2:16: error[E008]: invalid path '/a}}b': unbalanced '}}'")
    with pytest.raises(SandboxError) as refused:
        Sandbox(SHELL).popen(["ls"])
    assert str(refused.value) == "ls could not start under this policy: the policy does not allow executing /usr/bin/ls (add it to Filesystem.Exec)"


def test_fail_closed_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_LANDLOCK_ABI", "0")
    with pytest.raises(SandboxError) as info:
        Sandbox(SHELL)
    assert "no Landlock" in str(info.value)
    box = Sandbox(SHELL, best_effort=True)
    assert box.not_enforced == [
        "filesystem rules (needs Landlock ABI 1, kernel has 0)",
        "restricting truncation of files (truncate right) (needs Landlock ABI 3, kernel has 0)",
        "restricting ioctl on devices (ioctl_dev right) (needs Landlock ABI 5, kernel has 0)",  # stdio's ioctl, through Args
        "keeping abstract unix sockets and signals inside the sandbox (Landlock scopes) (needs Landlock ABI 6, kernel has 0)",
    ]


def test_from_text_and_confine_in_a_fork() -> None:
    box = Sandbox.from_text('[Runtime]\nFlags = ["stdio"]\n', name="inline.toml")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            box.confine()
            try:
                os.open("/etc/hostname", os.O_RDONLY)
                os.write(write, b"opened")
            except OSError as exc:
                os.write(write, errno.errorcode[exc.errno].encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    assert os.read(read, 100) == b"EPERM"  # stdio has no openat: seccomp said no


def test_no_shell_strings() -> None:
    with pytest.raises(TypeError):
        Sandbox(SHELL).popen("sh -c true")  # type: ignore[arg-type]
