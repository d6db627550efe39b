"""The systemd target, handed to systemd itself.

The host's systemd (252 on Debian 12) is booted as PID 1 of a private PID
and mount namespace (``unshare``; no VM, no running system manager needed),
with one service whose drop-in is the one corral writes; the service runs a
static probe that reports the kernel's answers. So the filter, the
namespaces and the path settings are the ones systemd itself builds from the
drop-in, not a re-implementation of them. Run as root and as ``nobody``
(``User=``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.backends import BACKENDS

from conftest import ir_of

HERE = Path(__file__).resolve().parent / "consumers"
SYSTEMD = "/lib/systemd/systemd"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(SYSTEMD) or not shutil.which("unshare") or not shutil.which("gcc"),
    reason="needs root, systemd, unshare and gcc (bash dev.sh setup)",
)

_BOOT = r"""set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system/corral-probe.service.d "/run/corral-probe/it's"
cp "$HOST/probe" /run/corral-probe/probe
echo secret > "/run/corral-probe/it's/secret"
echo ok > /run/corral-probe/ok
cp "$HOST/corral-probe.service" /run/systemd/system/
cp "$HOST/drop-in.conf" /run/systemd/system/corral-probe.service.d/corral.conf
exec env container=corral-test "$SYSTEMD" --unit=corral-probe.service --log-target=console --log-level=warning
"""

CHECKS = ["threads", "clone3", "openat2", "ptrace", "mount", "unshare", "getpid", "getpgid", "inet",
          "read:/run/corral-probe/ok", "read:/run/corral-probe/it's/secret", "write:/run/corral-probe/new", "write:/var/lib/corral-probe-new",
          "write:/run/sdprobe/new"]  # fmt: skip

FOREIGN_ABIS = ("i386", "x32") if os.uname().machine == "x86_64" else ()

POLICY = """
Name = "sdprobe"
Extends = ["base"]
[Filesystem]
ReadOnly = ["/run/corral-probe/**"]
Exec = ["/run/corral-probe/probe"]
Writable = ["/run/sdprobe/**"]
Deny = ["/run/corral-probe/it's/**"]
[Runtime]
Flags = ["sid-eperm"]
[Misc]
DenySyscalls = ["ptrace", "mount", "unshare"]

# an errno equal to systemd's default (EPERM) must not stop the service
[[Flag]]
Name = "sid-eperm"
Description = "getsid answers EPERM"
Errno = { getsid = "EPERM" }
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run(["gcc", "-static", "-O1", "-pthread", "-o", str(out), str(HERE / "probe.c")], check=True)
    return out


def boot(drop_in: str, probe: Path, tmp: Path, user: str = "") -> dict[str, int]:
    """Boot systemd with the unit, return the probe's answers (check -> errno)."""
    shutil.copy(probe, tmp / "probe")
    unit = ["[Unit]", "DefaultDependencies=no", "SuccessAction=exit-force", "FailureAction=exit-force",
            "[Service]", "Type=oneshot", f"StandardOutput=append:{tmp}/out.txt", "StandardError=inherit",
            "ExecStart=/run/corral-probe/probe " + " ".join(f'"{c}"' for c in CHECKS),
            # the other x86 ABIs, each in a process of its own: it must be killed ('-': the unit goes on)
            *(f"ExecStart=-/run/corral-probe/probe {abi}-survivor {abi}" for abi in FOREIGN_ABIS)]  # fmt: skip
    if user:
        unit.append(f"User={user}")
    (tmp / "corral-probe.service").write_text("\n".join(unit) + "\n")
    (tmp / "drop-in.conf").write_text(drop_in)
    env = {**os.environ, "HOST": str(tmp), "SYSTEMD": SYSTEMD}
    run = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private", "sh", "-c", _BOOT],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    out = tmp / "out.txt"
    assert out.exists(), f"the unit did not run:\n{run.stdout}\n{run.stderr}"
    return {k: int(v) for k, v in (line.split("=", 1) for line in out.read_text().splitlines())}


@pytest.mark.parametrize("user", ["", "nobody"], ids=["root", "nobody"])
def test_systemd_runs_the_service_as_the_policy_says(probe: Path, tmp_path: Path, user: str) -> None:
    drop_in = BACKENDS["systemd"].emit(ir_of(POLICY, "sdprobe.toml")).content.decode()
    got = boot(drop_in, probe, tmp_path, user)
    assert got["threads"] == 0, got  # glibc's pthread_create tries clone3, gets ENOSYS, falls back to clone
    assert got["clone3"] == 38 and got["openat2"] == 38, got  # ENOSYS, per call, as the policy says
    assert got["getpid"] == 0 and got["read:/run/corral-probe/ok"] == 0, got
    for denied in ("ptrace", "mount", "unshare", "inet", "getpgid"):
        assert got[denied] == 1, (denied, got)  # EPERM (getpgid: in systemd's implicit @default, denied by name)
    assert got["read:/run/corral-probe/it's/secret"] == 13, got  # EACCES: a ' in a Deny path still denies
    assert got["write:/run/sdprobe/new"] == 0, got  # Writable /run/NAME/**: RuntimeDirectory=
    assert got["write:/var/lib/corral-probe-new"] == 30, got  # EROFS: ProtectSystem=strict
    assert got["write:/run/corral-probe/new"] == 30, got  # EROFS: strict leaves /run writable, ReadOnlyPaths= closes it
    for abi in FOREIGN_ABIS:  # SystemCallArchitectures=native: the process ran (printed its marker) and was killed
        assert got[f"{abi}-survivor"] == -1 and abi not in got, (abi, got)


def test_without_the_errno_line_threads_do_not_start(probe: Path, tmp_path: Path) -> None:
    """The defect this target had: clone3 left to SystemCallErrorNumber=EPERM."""
    drop_in = BACKENDS["systemd"].emit(ir_of(POLICY, "sdprobe.toml")).content.decode()
    old = "\n".join(line for line in drop_in.splitlines() if not line.startswith("SystemCallFilter=~")) + "\n"
    got = boot(old, probe, tmp_path)
    assert got["threads"] == 1 and got["clone3"] == 1, got


def test_systemd_default_set_is_the_installed_one() -> None:
    """data/systemd.toml lists what this systemd adds to every allow list."""
    import tomllib

    out = subprocess.run(["systemd-analyze", "syscall-filter", "@default"], capture_output=True, text=True).stdout
    installed = {w for line in out.splitlines() if not line.lstrip().startswith(("@", "#")) for w in line.split()}
    data = tomllib.loads((Path(__file__).resolve().parent.parent / "src/corral/data/systemd.toml").read_text())
    assert installed and installed <= set(data["default_allowed"]), installed - set(data["default_allowed"])


HOSTILE_PATHS = ["/srv/it's/**", "/srv/a b/**", "/srv/[ab]/x", "/srv/{c,d}/**", "/srv/e\\\\[f\\\\]/**", "/a{x,[,}]}", "/srv/100%/**",
                 "/srv/$HOME/**", "/[xy]z/**", "/run/app/**", "/srv/semi;colon/**", "/srv/back\\\\\\\\slash/**", "/etc/passwd"]  # fmt: skip


@st.composite
def hostile_policies(draw: st.DrawFn) -> str:
    def pick() -> str:
        return "[" + ", ".join(f'"{p}"' for p in draw(st.lists(st.sampled_from(HOSTILE_PATHS), unique=True, max_size=4))) + "]"

    return f'Extends = ["base"]\n[Filesystem]\nWritable = {pick()}\nDeny = {pick()}\nReadOnly = {pick()}\n'


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(hostile_policies())
def test_systemd_reads_every_line_of_any_drop_in(tmp_path: Path, text: str) -> None:
    """Law: whatever the paths, systemd takes every line of the drop-in
    (no warning naming it), and no glob opens or hides /."""
    out = BACKENDS["systemd"].emit(ir_of(text, "law.toml"))
    drop_in = out.content.decode()
    unit = tmp_path / "law.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "law.service.d").mkdir(exist_ok=True)
    (tmp_path / "law.service.d" / "corral.conf").write_text(drop_in)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "corral.conf" not in proc.stderr, (text, proc.stderr)
    for line in drop_in.splitlines():
        assert line.split("=", 1)[-1].strip('"') not in ("-/", "/"), (text, line)
