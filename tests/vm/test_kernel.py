"""The guest really enforces AppArmor: a profile loaded with the host's
apparmor_parser denies a read that the same program does unconfined, and the
kernel logs the denial. Booted with apparmor=0 (CORRAL_VM_NO_APPARMOR=1)
these assertions fail: the tier tests the kernel, not the host."""

from __future__ import annotations

import json

import pytest

from .vm import boot

PROFILE = """
abi <abi/3.0>,
profile vm-sanity {
  /usr/bin/cat mr,
  /{usr/,}lib{,32,64}/** mr,
  /etc/ld.so.cache r,
  /run/vm/allowed r,
}
"""

JOB = r"""
exec 2>&1
r() { printf '%s=%s\n' "$1" "$2" >> facts; }
r enabled "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
r lsm "$(cat /sys/kernel/security/lsm 2>/dev/null)"
r root "$(awk '$2 == "/" {print $1}' /proc/mounts | tail -1)"
echo ok > /run/vm/allowed; echo secret > /run/vm/secret
apparmor_parser -r --skip-cache profile.apparmor; r load $?
r loaded "$(grep -c '^vm-sanity (enforce)' /sys/kernel/security/apparmor/profiles 2>/dev/null)"
r unconfined "$(cat /run/vm/secret 2>&1)"
r confined_allowed "$(sh -c 'echo "exec vm-sanity" > /proc/self/attr/exec && exec cat /run/vm/allowed' 2>&1)"
r confined_secret "$(sh -c 'echo "exec vm-sanity" > /proc/self/attr/exec && exec cat /run/vm/secret' 2>&1)"
r audit "$(dmesg | grep -c 'apparmor="DENIED".*profile="vm-sanity".*name="/run/vm/secret"')"
"""


@pytest.fixture(scope="module")
def facts(vm_ready: None) -> dict[str, str]:
    result = boot(JOB, files={"profile.apparmor": PROFILE}, timeout=300)
    assert result.rc == 0, result.console[-3000:]
    return dict(line.split("=", 1) for line in result.read("facts").splitlines() if "=" in line)


def test_guest_root_is_the_host_root_moved_not_chrooted(facts: dict[str, str]) -> None:
    # AppArmor mediates by path from the namespace root: "/host/..." would match no rule
    assert facts["root"] == "host"


def test_apparmor_is_on_in_the_guest(facts: dict[str, str]) -> None:
    assert facts["enabled"] == "Y", facts
    assert "apparmor" in facts["lsm"].split(","), facts
    assert "landlock" in facts["lsm"].split(","), facts


def test_a_loaded_profile_denies_what_it_does_not_allow(facts: dict[str, str]) -> None:
    assert facts["load"] == "0" and facts["loaded"] == "1", facts
    assert facts["unconfined"] == "secret"
    assert facts["confined_allowed"] == "ok", facts
    assert "Permission denied" in facts["confined_secret"], facts
    assert int(facts["audit"]) >= 1, facts
