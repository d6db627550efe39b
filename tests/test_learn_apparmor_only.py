"""What `corral learn` says and does with AppArmor events alone.

AppArmor logs carry files, socket families and capabilities, never system
calls or ports: a policy learned from them alone says so (the seccomp filter
and port rules learned nothing). A directory AppArmor names with its
trailing slash (``/run/x/out/``) is granted as that directory, not refused
as unnameable (``/run/x/out//``): the learning loop in the VM
(tests/vm/test_learning.py) needs it to converge.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

AA = ('audit: type=1400 audit(1700000000.123:456): apparmor="ALLOWED" operation="open" profile="p" '
      'name="{name}" pid=123 comm="tar" requested_mask="r" denied_mask="r" fsuid=0 ouid=0\n')
SECCOMP = ('type=SECCOMP msg=audit(1700000000.125:458): auid=0 uid=0 gid=0 ses=1 pid=125 comm="curl" exe="/usr/bin/curl" '
           'sig=0 arch=c000003e syscall=54 compat=0 ip=0x7f0000 code=0x7ffc0000\n')


def learn(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    log = tmp_path / "audit.log"
    log.write_text(text)
    (tmp_path / "p.toml").write_text('Name = "p"\n')
    return subprocess.run([sys.executable, "-m", "corral.cli", "learn", str(log), "--into", str(tmp_path / "p.toml"), "--dry-run"],
                          capture_output=True, text=True)


def test_apparmor_events_alone_say_they_carry_no_syscalls_or_ports(tmp_path: Path) -> None:
    proc = learn(tmp_path, AA.format(name="/srv/data/f"))
    assert proc.returncode == 0, proc.stderr
    assert "AppArmor events alone" in proc.stderr and "no system calls and no ports" in proc.stderr


def test_not_said_when_the_logs_carry_system_calls(tmp_path: Path) -> None:
    proc = learn(tmp_path, AA.format(name="/srv/data/f") + SECCOMP)
    assert proc.returncode == 0, proc.stderr
    assert "AppArmor events alone" not in proc.stderr


def test_a_directory_named_with_its_slash_is_granted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = learn(tmp_path, AA.format(name=f"{out}/"))
    assert proc.returncode == 0, proc.stderr
    assert "cannot be named" not in proc.stderr, proc.stderr
    assert f'"{out}/"' in proc.stdout
