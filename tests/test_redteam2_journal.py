"""redteam2: journald shows every process's messages, and any local user
(or a confined service, through its stdout or /dev/log) can log text that
looks like an AppArmor, seccomp or Landlock event. ``corral learn`` read
the MESSAGE of every journal entry, so ``logger 'apparmor="ALLOWED"
operation="capable" profile="web" capname="sys_admin"'`` put CAP_SYS_ADMIN
into the policy learned for ``web``. journald's ``_TRANSPORT`` is a trusted
field (set by journald, not by the client): only the kernel's and the
audit subsystem's entries are read as events; the others are counted as
counted as forged, and say why.
"""

from __future__ import annotations

import json

from corral.learn.auditlog import read_logs
from corral.learn.events import Capability, Collected, File

EVENT = 'apparmor="ALLOWED" operation="capable" profile="web" pid=4242 comm="web" capability=21 capname="sys_admin"'
FILE = 'apparmor="ALLOWED" operation="open" profile="web" name="/etc/shadow" pid=4242 comm="web" requested_mask="r" denied_mask="r" fsuid=0 ouid=0'


def _entry(message: str, transport: str | None) -> str:
    entry = {"MESSAGE": f"audit: type=1400 audit(1700000000.123:77): {message}", "PRIORITY": "5"}
    if transport is not None:
        entry |= {"_TRANSPORT": transport, "SYSLOG_IDENTIFIER": "kernel" if transport in ("kernel", "audit") else "evil"}
    if transport not in ("kernel", "audit", None):
        entry |= {"_PID": "31337", "_UID": "1000", "_COMM": "evil"}
    return json.dumps(entry) + "\n"


def _read(*lines: str) -> Collected:
    c = Collected()
    read_logs([list(lines)], c)
    return c


def test_entries_logged_by_a_process_are_not_events() -> None:
    for transport in ("syslog", "journal", "stdout"):
        c = _read(_entry(EVENT, transport), _entry(FILE, transport))
        assert Capability("sys_admin") not in c.events and File("/etc/shadow", "r") not in c.events, (transport, c.events)
        assert c.forged == 2 and any("_TRANSPORT" in s or transport in s for s in c.forged_samples), c.forged_samples


def test_the_kernels_entries_are_events() -> None:
    for transport in ("kernel", "audit", None):
        c = _read(_entry(EVENT, transport), _entry(FILE, transport))
        assert Capability("sys_admin") in c.events and File("/etc/shadow", "r") in c.events, (transport, c.events)
