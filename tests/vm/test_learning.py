"""The tutorial's learning loop for real (seed 003), in the VM: install a
bare policy in complain mode, run a real program (tar extracting an archive)
under it, feed the kernel's audit lines to `corral learn --into`, reinstall
in enforce mode and rerun: it works within two rounds. Before the glob
matcher modelled the kernel, learn believed ``DIR/*`` covered ``DIR/`` and
the loop never converged (``mkdir .../src/`` denied forever).

`corral learn` also says, when it learned from AppArmor events alone, that
those carry no system calls and no ports.
"""

from __future__ import annotations

import shlex
import sys

import pytest

from .vm import boot

CORRAL = f"{shlex.quote(sys.executable)} -I -m corral.cli"
D = "/run/corral-aa"
SEED = """Name = "vm-tar"
Extends = ["base"]
[Filesystem]
Exec = ["/usr/bin/tar"]
"""

JOB = rf"""
exec 2>&1
r() {{ printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n' '|')" >> facts; }}
mkdir -p /run/vm/src/sub {D}; echo one > /run/vm/src/a.txt; echo two > /run/vm/src/sub/b.txt
tar -cf /run/vm/src.tar -C /run/vm src; rm -rf /run/vm/src
extract() {{
    rm -rf /run/vm/out; mkdir -p /run/vm/out
    sh -c 'echo "exec vm-tar" > /proc/self/attr/exec && exec tar -xf /run/vm/src.tar -C /run/vm/out' 2>&1
    echo "rc=$? files=$(cat /run/vm/out/src/a.txt /run/vm/out/src/sub/b.txt 2>/dev/null | tr '\n' ' ')"
}}
cp seed.toml policy.toml
{CORRAL} install policy.toml --dir {D} --complain > /dev/null; r complain_install $?
dmesg -C
r complain_run "$(extract)"
dmesg > round1.log
out=$({CORRAL} learn round1.log --into policy.toml --profile vm-tar 2>&1); r learn1_rc $?; r learn1_out "$out"
{CORRAL} install policy.toml --dir {D} > install1.log 2>&1; r enforce1_install $?
dmesg -C
r enforce1_run "$(extract)"
dmesg > round2.log
r round2_denials "$(grep -c 'apparmor="DENIED"' round2.log)"
if ! grep -q 'rc=0 files=one two' <<EOF_
$(extract)
EOF_
then
    {CORRAL} install policy.toml --dir {D} --complain > /dev/null
    dmesg -C; extract > /dev/null; dmesg > round2c.log
    out=$({CORRAL} learn round2c.log --into policy.toml --profile vm-tar 2>&1); r learn2_out "$out"
    {CORRAL} install policy.toml --dir {D} > /dev/null 2>&1
fi
r enforce2_run "$(extract)"
cp policy.toml learned.toml
"""


@pytest.fixture(scope="module")
def facts(vm_ready: None) -> dict[str, str]:
    result = boot(JOB, files={"seed.toml": SEED}, timeout=600)
    assert result.rc == 0, result.console[-3000:]
    facts = dict(line.split("=", 1) for line in result.read("facts").splitlines() if "=" in line)
    facts["policy"] = result.read("learned.toml")
    return facts


def test_complain_mode_lets_the_seed_run(facts: dict[str, str]) -> None:
    assert facts["complain_install"] == "0"
    assert facts["complain_run"].startswith("rc=0 files=one two"), facts


def test_learned_from_the_kernel_and_converged_within_two_rounds(facts: dict[str, str]) -> None:
    assert facts["learn1_rc"] == "0", facts["learn1_out"]
    assert facts["enforce1_install"] == "0"
    assert facts["enforce2_run"].startswith("rc=0 files=one two"), (facts, facts["policy"])
    assert "/run/vm/out/" in facts["policy"]


def test_learn_says_apparmor_logs_carry_no_ports_or_syscalls(facts: dict[str, str]) -> None:
    out = facts["learn1_out"]
    assert "AppArmor" in out and "no system calls" in out and "ports" in out, out
