"""The seccomp JSON and capability set in real OCI runtimes (runc, crun),
and the raw BPF in bubblewrap (``bwrap --seccomp FD``).

A tiny bundle is built in the test: a busybox-static root and a static C
probe (tests/consumers/probe.c, gcc -static). config.json carries corral's
``linux.seccomp`` (the seccomp target, as written) and
``process.capabilities`` (the capabilities target's OCI form); the runtime
applies them and the probe reports the kernel's answers. i386 and x32 calls
must kill the process (SIGSYS: exit 159).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.backends import BACKENDS
from corral.backends.capabilities import oci

from conftest import ir_of

HERE = Path(__file__).resolve().parent / "consumers"
BUSYBOX = shutil.which("busybox")
RUNTIMES = [r for r in ("runc", "crun") if shutil.which(r)]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("gcc") or BUSYBOX is None, reason="needs root, gcc and busybox-static (bash dev.sh setup)")

POLICY = """
Name = "ociprobe"
Extends = ["base"]
[Runtime]
Flags = ["exec"]
[User]
Capabilities = ["chown", "net_bind_service"]
[Misc]
DenySyscalls = ["ptrace", "mount", "unshare"]
"""
CHECKS = ["threads", "clone3", "openat2", "ptrace", "mount", "unshare", "getpid"]
KILLED = 128 + 31  # SIGSYS


@pytest.fixture(scope="module")
def ir():  # type: ignore[no-untyped-def]
    return ir_of(POLICY, "ociprobe.toml")


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="corral-oci-"))  # readable by nobody, unlike pytest's tmp
    top.chmod(0o755)
    yield from _rootfs(top / "rootfs")
    shutil.rmtree(top, ignore_errors=True)


def _rootfs(root: Path) -> Iterator[Path]:
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    assert BUSYBOX is not None
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "cat", "grep"):
        (root / "bin" / applet).symlink_to("busybox")
    subprocess.run(["gcc", "-static", "-O1", "-pthread", "-o", str(root / "bin" / "probe"), str(HERE / "probe.c")], check=True)
    yield root


def bundle(rootfs: Path, ir, args: list[str], runtime: str = "runc") -> Path:  # type: ignore[no-untyped-def]
    """A bundle directory next to the shared rootfs, with corral's artifacts in config.json."""
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs), "readonly": True},
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
            "env": ["PATH=/bin"], "noNewPrivileges": True,
            "capabilities": oci(ir),
        },
        "hostname": "corral",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "seccomp": json.loads(BACKENDS["seccomp"].emit(ir).content),
        },
    }  # fmt: skip
    return _write_bundle(rootfs, config)


_COUNTER = iter(range(10**6))


def _write_bundle(rootfs: Path, config: dict) -> Path:  # type: ignore[type-arg]
    b = rootfs.parent / f"b{next(_COUNTER)}"
    b.mkdir()
    (b / "config.json").write_text(json.dumps(config))
    return b


def run(runtime: str, b: Path) -> subprocess.CompletedProcess[str]:
    state = b / "state"
    name = f"corral-{os.getpid()}-{b.name}"
    command = [runtime, "--root", str(state), "run", "--bundle", str(b), name]
    if runtime == "crun" and _hybrid_cgroups():
        # crun refuses a hybrid cgroup layout (this machine type's): give it
        # the unified hierarchy alone, in a mount namespace of its own
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$@"', "sh",
                   runtime, "--cgroup-manager=disabled", *command[1:]]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _hybrid_cgroups() -> bool:
    return os.path.ismount("/sys/fs/cgroup/unified")


def answers(stdout: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split("=", 1) for line in stdout.splitlines() if "=" in line)}


@pytest.mark.skipif(not RUNTIMES, reason="no OCI runtime installed (dev.sh installs runc and crun)")
@pytest.mark.parametrize("runtime", RUNTIMES or ["runc"])
def test_oci_runtime_enforces_seccomp_json_and_capabilities(runtime: str, rootfs: Path, ir) -> None:  # type: ignore[no-untyped-def]
    proc = run(runtime, bundle(rootfs, ir, ["/bin/probe", *CHECKS]))
    assert proc.returncode == 0, proc.stderr
    got = answers(proc.stdout)
    assert got["threads"] == 0 and got["getpid"] == 0, got
    assert got["clone3"] == 38 and got["openat2"] == 38, got  # ENOSYS, from the JSON's errnoRet
    for denied in ("ptrace", "mount", "unshare"):
        assert got[denied] == 1, (denied, got)  # EPERM: the default action
    caps = run(runtime, bundle(rootfs, ir, ["/bin/grep", "^Cap", "/proc/self/status"]))
    assert caps.returncode == 0, caps.stderr
    sets = dict(line.split(":\t") for line in caps.stdout.splitlines())
    assert {k: int(v, 16) for k, v in sets.items()} == {k: (1 << 0) | (1 << 10) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}, sets


@pytest.mark.skipif(not RUNTIMES, reason="no OCI runtime installed (dev.sh installs runc and crun)")
@pytest.mark.parametrize("runtime", RUNTIMES or ["runc"])
@pytest.mark.parametrize("abi", ["i386", "x32"])
def test_oci_runtime_kills_foreign_abis(runtime: str, abi: str, rootfs: Path, ir) -> None:  # type: ignore[no-untyped-def]
    if os.uname().machine != "x86_64":
        pytest.skip("i386 and x32 are x86_64's other ABIs")
    proc = run(runtime, bundle(rootfs, ir, ["/bin/probe", "getpid", abi]))
    assert "getpid=0" in proc.stdout and f"{abi}=" not in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == KILLED, (proc.returncode, proc.stderr)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (dev.sh installs it)")
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("abi", ["", "i386", "x32"])
def test_bubblewrap_enforces_the_bpf(abi: str, nobody: bool, rootfs: Path, ir) -> None:  # type: ignore[no-untyped-def]
    bpf = rootfs.parent / "filter.bpf"
    bpf.write_bytes(BACKENDS["bpf"].emit(ir).content)
    args = ["/bin/probe", *CHECKS] + ([abi] if abi else [])
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"] if nobody else []
    with open(bpf, "rb") as fh:
        proc = subprocess.run([*prefix, "bwrap", "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev",
                               "--seccomp", str(fh.fileno()), *args], pass_fds=(fh.fileno(),), capture_output=True, text=True, timeout=60)  # fmt: skip
    got = answers(proc.stdout)
    assert got.get("threads") == 0 and got["getpid"] == 0 and got["clone3"] == 38, proc.stdout + proc.stderr
    for denied in ("ptrace", "mount", "unshare"):
        assert got[denied] == 1, (denied, got)
    if abi:
        assert f"{abi}=" not in proc.stdout and proc.returncode == KILLED, (proc.returncode, proc.stdout, proc.stderr)
    else:
        assert proc.returncode == 0, proc.stderr
