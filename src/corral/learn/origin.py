"""Who wrote a log line that looks like an event: the kernel (through
auditd or journald's trusted fields), possibly the kernel (a text format),
or a process imitating it.

Any process can write text that looks like an AppArmor, seccomp or
Landlock event: ``logger 'apparmor="ALLOWED" operation="capable"
capname="sys_admin"'`` puts it in syslog, kern.log's neighbours and the
journal, and ``corral learn`` would grant what it names. So a line is an
event only in a shape the kernel or auditd writes:

* ``PROVEN`` - auditd's log (``type=AVC|1400|150x|SECCOMP|1326|
  LANDLOCK_ACCESS|1423 msg=audit(...)``: user-space messages get USER_*
  types, which the kernel enforces), and journald entries whose
  ``_TRANSPORT`` (which a client cannot set) is the kernel's or audit's;
* ``TEXT`` - the kernel's own message shape (``audit: type=1400
  audit(...): ...``) bare or after a dmesg timestamp, or in a syslog /
  ``journalctl`` short line whose tag is ``kernel`` (or ``audit[PID]``
  with journald's audit form ``AVC apparmor=...``). A text format cannot
  prove this: ``logger -t kernel`` writes the same line. These are read,
  and the learner warns that they may be forged;
* ``FORGED`` - anything else carrying an event's text (another tag,
  ``USER_AVC``, text before the shape): never an event, counted and shown.
"""

from __future__ import annotations

import re

PROVEN, TEXT, FORGED = "proven", "text", "forged"

_TYPES = r"(?:AVC|1400|150\d|SECCOMP|1326|LANDLOCK_ACCESS|1423)"
#: auditd's log (and ``ausearch -i``'s ``msg=audit(date) :``).
_AUDITD = re.compile(rf"(?:node=\S+ )?type={_TYPES} msg=audit\([^)]*\) ?: ".encode())
#: The kernel's printk of an audit record.
_KERNEL = re.compile(rb"audit: type=(?:1400|150\d|1326|1423) audit\(\d+(?:\.\d+)?:\d+\): ")
#: journald's rendering of an audit-transport record (``AVC apparmor=...``).
_JOURNAL_AUDIT = re.compile(rb"(?:AVC|SECCOMP|LANDLOCK_ACCESS|AUDIT1400|AUDIT150\d|AUDIT1326|AUDIT1423) ")
#: dmesg's timestamps: ``[ 1234.567890]``, ``[Sun Nov 29 16:00:00 2026]``.
_DMESG = re.compile(rb"\[[^\]]{1,40}\] ")


def of(line: bytes, start: int) -> str:
    """Who wrote LINE, whose event text (``apparmor="``, ``type=1326`` ...)
    is at START."""
    if _AUDITD.match(line):
        return PROVEN
    at = line.find(b"audit: type=")
    if 0 <= at <= start and _KERNEL.match(line, at):
        return TEXT if _kernel_prefix(line[:at]) else FORGED
    tag = line.find(b": ")
    if 0 <= tag < start and _JOURNAL_AUDIT.match(line, tag + 2) and _syslog_tag(line[: tag + 2], audit=True):
        return TEXT
    return FORGED


def of_message(message: bytes) -> str:
    """Who wrote a journal entry's MESSAGE when the entry does not say
    (``journalctl -o json`` without ``_TRANSPORT``): the kernel's shapes
    are text, anything else forged."""
    if _KERNEL.match(message) or _JOURNAL_AUDIT.match(message) or _AUDITD.match(message):
        return TEXT
    return FORGED


def _kernel_prefix(prefix: bytes) -> bool:
    """What may come before the kernel's ``audit: type=``: nothing (dmesg
    -t, journalctl -o cat), a dmesg timestamp, or a syslog header whose tag
    is ``kernel`` (optionally followed by the kernel's timestamp)."""
    if not prefix or _DMESG.fullmatch(prefix):
        return True
    m = re.search(rb"\[\s*\d+\.\d+\] $", prefix)
    if m is not None:
        prefix = prefix[: m.start()]
    return _syslog_tag(prefix, audit=False)


def _syslog_tag(head: bytes, audit: bool) -> bool:
    """Whether HEAD (``TIMESTAMP HOST TAG: ``, ending in the first ``: ``
    of the line) carries the tag the kernel's messages do."""
    if not head.endswith(b": ") or b": " in head[:-2]:
        return False
    tag = head[:-2].rsplit(b" ", 1)[-1]
    return re.fullmatch(rb"audit\[\d+\]" if audit else rb"kernel", tag) is not None
