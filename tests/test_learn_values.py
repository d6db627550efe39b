"""Issue 14: ``corral learn`` wrote policies that fail to load (an unknown
capability name, port 99999999) from logs that name them. Every learned
value is now checked by the item kind the policy loader checks its key
with; what is refused is left out with a note naming it, and the policy
written loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from corral.learn.events import Call, Capability, Collected, Port, Socket, Syscall
from corral.learn.synth import render, synthesize
from corral.policy import load_policy_text

CORRAL = str(Path(sys.executable).with_name("corral"))

BAD_LOG = """\
Nov 29 16:00:00 host kernel: audit: type=1400 audit(1700000000.123:77): apparmor="ALLOWED" operation="capable" profile="web" pid=42 comm="web" capability=99 capname="cap_bogus"
Nov 29 16:00:00 host kernel: audit: type=1400 audit(1700000000.123:78): apparmor="ALLOWED" operation="connect" profile="web" pid=42 comm="web" family="inet" sock_type="stream" protocol=6 requested_mask="send" fport=99999999
audit: type=1423 audit(1700000000.100:9): domain=1 blockers=net.connect_tcp dest=99999999
"""
BAD_RECORD = """\
{"corral_run_log": 1, "policy": "web"}
{"event": "capability", "name": "not_a_cap"}
{"event": "call", "name": "syscall_0x1b6"}
{"event": "socket", "family": "weird", "type": "odd"}
"""


def test_every_learned_value_is_checked_and_every_drop_is_named(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    log.write_text(BAD_LOG)
    record = tmp_path / "bad.jsonl"
    record.write_text(BAD_RECORD)
    policy = tmp_path / "new.toml"
    run = subprocess.run([CORRAL, "learn", str(log), str(record), "--into", str(policy)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = policy.read_text()
    load_policy_text(text, str(policy))  # it loads
    for bad in ("cap_bogus", "not_a_cap", "99999999", "syscall_0x1b6", "'weird'"):
        assert f"{bad}" in run.stderr, (bad, run.stderr)  # said on the terminal
        assert not any(bad in line.split("#")[0] for line in text.splitlines()), (bad, text)  # not granted
    assert '"tcp"' in text  # what was valid is kept


def test_values_from_each_source_are_checked() -> None:
    c = Collected()
    c.add(Capability("CAP_SYS_ADMIN"), "corral run --log")
    c.add(Port("bind", "tcp", 70000), "apparmor ALLOWED bind")
    c.add(Port("connect", "tcp", 443), "connect")
    c.add(Syscall("not_a_syscall"), "strace")
    c.add(Call("also_not_a_syscall"), "corral run --log")
    c.add(Socket("inet", "stream"), "socket")
    out = synthesize(c)
    text = render(out, name="t", description="t", header=[])
    load_policy_text(text, "<learned>")
    granted = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "tcp:443" in granted and "70000" not in granted and "CAP_SYS_ADMIN" not in granted and "not_a_syscall" not in granted, granted
    notes = "\n".join(out.notes)
    for bad in ("CAP_SYS_ADMIN", "tcp:70000", "not_a_syscall", "also_not_a_syscall"):
        assert bad in notes, (bad, notes)
