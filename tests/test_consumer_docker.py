"""`compile -t docker` alone is self-contained: it writes the docker/compose
settings and the seccomp JSON and AppArmor profile they name, next to each
other, each accepted by its consumer."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, apparmor_compile
from test_consumer_oci import _rootfs, answers

AGENT = ROOT / "examples" / "agent-http2.toml"


def compile_docker(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", "compile", str(AGENT), "-t", "docker", "-o", str(out), *extra],
                          capture_output=True, text=True, cwd=out)  # fmt: skip


def test_docker_alone_writes_everything_docker_run_needs(tmp_path: Path) -> None:
    proc = compile_docker(tmp_path, "--allow-unenforced")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["agent-http2.apparmor", "agent-http2.docker.yaml", "agent-http2.seccomp.json"], written
    text = (tmp_path / "agent-http2.docker.yaml").read_text()
    service = yaml.safe_load(text)["services"]["agent-http2"]
    opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in service["security_opt"])
    assert (tmp_path / opts["seccomp"]).is_file()  # compose resolves ./NAME.seccomp.json next to the file
    assert json.loads((tmp_path / opts["seccomp"]).read_text())["defaultAction"] == "SCMP_ACT_ERRNO"
    profile = (tmp_path / "agent-http2.apparmor").read_text()
    assert re.search(rf"^profile {re.escape(opts['apparmor'])}[ {{]", profile, re.M), "the profile docker names is the one written"
    assert apparmor_compile(profile, tmp_path).returncode == 0
    flags = [line.strip(" #\\") for line in text.splitlines() if line.startswith("#     --")]
    seccomp_flag = next(f for f in flags if f.startswith("--security-opt seccomp="))
    assert (tmp_path / shlex.split(seccomp_flag)[1].split("=", 1)[1]).is_file()


def test_docker_alone_is_refused_only_for_what_docker_cannot_enforce(tmp_path: Path) -> None:
    proc = compile_docker(tmp_path, "--strict")  # without --strict, a named target's gaps are a warning
    assert proc.returncode == 2
    assert "ports (would be enforced by landlock, nftables, egress)" in proc.stderr, proc.stderr
    assert "system calls" not in proc.stderr and "files" not in proc.stderr, proc.stderr  # the seccomp JSON and profile came with it


PODMAN = shutil.which("podman")


@pytest.mark.skipif(PODMAN is None or os.geteuid() != 0 or not (shutil.which("runc") and shutil.which("gcc") and shutil.which("busybox")),
                    reason="needs root, podman, runc and gcc (bash dev.sh setup)")  # fmt: skip
def test_podman_runs_the_docker_flags_as_written(tmp_path: Path) -> None:
    """podman takes docker's flags: an image imported from a local busybox
    rootfs runs the static probe under the artifact's own `docker run` flags
    (its seccomp JSON, capabilities, no-new-privileges, read-only root)."""
    assert compile_docker(tmp_path, "--allow-unenforced").returncode == 0
    text = (tmp_path / "agent-http2.docker.yaml").read_text()
    flags = [shlex.split(line.strip(" #\\")) for line in text.splitlines() if line.startswith("#     --")]
    # this kernel has no AppArmor: say so rather than pretend (apparmor_parser checks the profile above)
    aa = Path("/sys/module/apparmor/parameters/enabled")
    args = [a for f in flags if not (f[-1].startswith("apparmor=") and not (aa.exists() and aa.read_text().startswith("Y"))) for a in f]
    store = Path(tempfile.mkdtemp(prefix="corral-podman-"))
    try:
        root = store / "rootfs"
        next(_rootfs(root))
        (root / "run").mkdir()
        subprocess.run(["tar", "-C", str(root), "-cf", str(store / "rootfs.tar"), "."], check=True)
        podman = [PODMAN or "podman", "--root", str(store / "root"), "--runroot", str(store / "run"), "--storage-driver", "vfs",
                  "--cgroup-manager=cgroupfs", "--events-backend=none", "--runtime", "runc"]  # fmt: skip
        subprocess.run([*podman, "import", str(store / "rootfs.tar"), "localhost/corral-probe:test"], check=True, capture_output=True)
        # the sandbox this suite runs in has low rlimits and hybrid cgroups: hand podman what it can set
        run = [*podman, "run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", *args, "localhost/corral-probe:test"]
        proc = subprocess.run([*run, "/bin/probe", "getpid", "threads", "clone3", "ptrace", "mount", "write:/etc/x", "write:/run/agent-http2/x"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        got = answers(proc.stdout)
        assert got["getpid"] == 0 and got["threads"] == 0 and got["clone3"] == 38, got
        assert got["ptrace"] == 1 and got["mount"] == 1, got
        assert got["write:/etc/x"] == 30 and got["write:/run/agent-http2/x"] == 0, got  # --read-only, --tmpfs /run/agent-http2
        caps = subprocess.run([*run, "/bin/grep", "^Cap", "/proc/self/status"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert caps.returncode == 0, caps.stderr
        assert all(int(line.split()[1], 16) == 0 for line in caps.stdout.splitlines()), caps.stdout  # --cap-drop=ALL
    finally:
        subprocess.run(["rm", "-rf", str(store)], check=False)
