"""`corral install` / `uninstall` / `--complain` for real, and `corral run`
on an old Landlock ABI, in one boot of the VM (Debian 6.1: AppArmor on,
Landlock ABI 2).

- install loads the profile (the kernel lists it) and the kernel enforces it;
  --complain reloads it in complain mode; uninstall unloads it.
- a broken update is rolled back: the load is made to fail for real by
  running install under a profile without mac_admin (the offline check
  passes, `apparmor_parser -r` is refused); the old file is back, the kernel
  still has the old profile, and the message says that the rollback's own
  reload failed too instead of claiming it worked.
- ExecProfiles whose target profile is not loaded get a warning.
- `corral run` refuses a policy with TCP port rules on ABI 2 and says why;
  --best-effort runs it and lists what is not enforced.
"""

from __future__ import annotations

import shlex
import sys

import pytest

from .vm import boot

CORRAL = f"{shlex.quote(sys.executable)} -I -m corral.cli"
D = "/run/corral-aa"
POLICY = """Name = "vm-install"
Extends = ["base"]
[Filesystem]
ReadOnly = ["/run/vm/allowed"]
Exec = ["/usr/bin/cat"]
"""
EXECPROFILES = """Name = "vm-execprofiles"
Extends = ["base"]
[Filesystem]
ExecProfiles = { "/usr/bin/true" = "vm-not-loaded" }
"""
NOADMIN = """abi <abi/3.0>,
profile noadmin {
  /** rwlkmix,
  capability,
  deny capability mac_admin,
  network,
  signal,
  ptrace,
  unix,
}
"""
PORTS = """Name = "vm-ports"
Extends = ["base"]
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:443"]
[Filesystem]
Exec = ["/usr/bin/true"]
"""

JOB = rf"""
exec 2>&1
r() {{ printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n' '|')" >> facts; }}
confined() {{ sh -c "echo 'exec $1' > /proc/self/attr/exec && shift && exec \"\$@\"" -- "$@"; }}
echo ok > /run/vm/allowed; echo secret > /run/vm/secret; mkdir -p {D}
profiles() {{ grep "^$1 (" /sys/kernel/security/apparmor/profiles; }}

out=$({CORRAL} install policy.toml --dir {D}); r install_rc $?; r install_out "$out"
r loaded "$(profiles vm-install)"
r read_allowed "$(sh -c 'echo "exec vm-install" > /proc/self/attr/exec && exec cat /run/vm/allowed' 2>&1)"
r read_secret "$(sh -c 'echo "exec vm-install" > /proc/self/attr/exec && exec cat /run/vm/secret' 2>&1)"

out=$({CORRAL} install policy.toml --dir {D} --complain); r complain_rc $?
r complain_loaded "$(profiles vm-install)"
r complain_read_secret "$(sh -c 'echo "exec vm-install" > /proc/self/attr/exec && exec cat /run/vm/secret' 2>&1)"
out=$({CORRAL} install policy.toml --dir {D}); r enforce_again_rc $?

apparmor_parser -r --skip-cache noadmin.apparmor; r noadmin_load $?
out=$(sh -c 'echo "exec noadmin" > /proc/self/attr/exec && exec {CORRAL} install policy.toml --dir {D} --complain' 2>&1); r rollback_rc $?
r rollback_out "$out"
r rollback_loaded "$(profiles vm-install)"
r rollback_file_complain "$(grep -c 'flags=(complain)' {D}/corral.vm-install)"

out=$({CORRAL} install execprofiles.toml --dir {D} 2>&1); r execprofiles_rc $?; r execprofiles_out "$out"

out=$({CORRAL} uninstall vm-install --dir {D} 2>&1); r uninstall_rc $?
r uninstalled "$(profiles vm-install)"
r uninstalled_file "$(ls {D}/corral.vm-install 2>&1)"

r landlock_abi "$(python3 -I -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.syscall(444, None, 0, 1))')"
out=$({CORRAL} run ports.toml -- /usr/bin/true 2>&1); r refuse_rc $?; r refuse_out "$out"
out=$({CORRAL} run --best-effort ports.toml -- /usr/bin/true 2>&1); r best_rc $?; r best_out "$out"
"""


@pytest.fixture(scope="module")
def facts(vm_ready: None) -> dict[str, str]:
    files = {"policy.toml": POLICY, "execprofiles.toml": EXECPROFILES, "noadmin.apparmor": NOADMIN, "ports.toml": PORTS}
    result = boot(JOB, files=files, timeout=600)
    assert result.rc == 0, result.console[-3000:]
    return dict(line.split("=", 1) for line in result.read("facts").splitlines() if "=" in line)


def test_install_loads_and_the_kernel_enforces(facts: dict[str, str]) -> None:
    assert facts["install_rc"] == "0", facts["install_out"]
    assert facts["loaded"] == "vm-install (enforce)", facts
    assert facts["read_allowed"] == "ok"
    assert "Permission denied" in facts["read_secret"]


def test_complain_mode_is_loaded_as_complain(facts: dict[str, str]) -> None:
    assert facts["complain_rc"] == "0"
    assert facts["complain_loaded"] == "vm-install (complain)", facts
    assert facts["complain_read_secret"] == "secret"  # complain: logged, not denied
    assert facts["enforce_again_rc"] == "0"


def test_a_failed_update_is_rolled_back_and_says_so_honestly(facts: dict[str, str]) -> None:
    assert facts["noadmin_load"] == "0"
    assert facts["rollback_rc"] == "2", facts["rollback_out"]
    out = facts["rollback_out"]
    assert "loading failed" in out
    assert "reloading it failed too" in out and "restored and reloaded" not in out, out
    assert facts["rollback_loaded"] == "vm-install (enforce)"   # the kernel kept the old profile
    assert facts["rollback_file_complain"] == "0"               # and the old file is back


def test_execprofiles_target_not_loaded_is_warned(facts: dict[str, str]) -> None:
    assert facts["execprofiles_rc"] == "0", facts["execprofiles_out"]
    assert "profile 'vm-not-loaded' is not loaded" in facts["execprofiles_out"]


def test_uninstall_unloads(facts: dict[str, str]) -> None:
    assert facts["uninstall_rc"] == "0"
    assert facts["uninstalled"] == ""
    assert "No such file" in facts["uninstalled_file"]


def test_old_landlock_abi_refuses_then_best_effort_lists_what_is_lost(facts: dict[str, str]) -> None:
    assert facts["landlock_abi"] == "2"
    assert facts["refuse_rc"] not in ("0", ""), facts["refuse_out"]
    assert "ABI" in facts["refuse_out"] and "TCP port" in facts["refuse_out"], facts["refuse_out"]
    assert facts["best_rc"] == "0", facts["best_out"]
    assert "443" in facts["best_out"] or "TCP port" in facts["best_out"], facts["best_out"]
