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
#: journalctl's short form of an audit-transport entry: ``HOST audit[PID]: `` ending the header.
_AUDIT_TAG = re.compile(rb"(?:^| )audit(?:\[\d+\])?$")
#: The kernel ring buffer's other renderings: ``dmesg -r`` (``<5>[ 12.3] ``),
#: ``dmesg -x`` (``kern  :notice: [ 12.3] ``; user space's lines say ``user``)
#: and /dev/kmsg itself (``5,1234,5678,-;``).
_RING = re.compile(rb"<\d{1,3}>\[[^\]]{1,40}\] |kern *:[a-z]+ *: (?:\[[^\]]{1,40}\] )?|\d{1,3},\d+,\d+,[^;]{0,20};")


def of(line: bytes, start: int) -> str:
    """Who wrote LINE, whose event text (``apparmor="``, ``type=1326`` ...)
    is at START. (Called for every event line of a log: byte comparisons
    first, one anchored regular expression.)"""
    if line[:5] in (b"type=", b"node="):
        return PROVEN if _AUDITD.match(line) else FORGED
    at = line.find(b"audit: type=", 0, start + 5)  # a seccomp or Landlock event starts at its type=
    if at >= 0:
        return TEXT if _KERNEL.match(line, at) and _kernel_prefix(line, at) else FORGED
    tag = line.find(b": ")
    if 0 <= tag < start and _JOURNAL_AUDIT.match(line, tag + 2) and _AUDIT_TAG.search(line, 0, tag):
        return TEXT
    return FORGED


def of_message(message: bytes) -> str:
    """Who wrote a journal entry's MESSAGE when the entry does not say
    (``journalctl -o json`` without ``_TRANSPORT``): the kernel's shapes
    are text, anything else forged."""
    if _KERNEL.match(message) or _JOURNAL_AUDIT.match(message) or _AUDITD.match(message):
        return TEXT
    return FORGED


def _kernel_prefix(line: bytes, at: int) -> bool:
    """Whether what comes before the kernel's ``audit: type=`` at AT is
    what the kernel's messages have there: nothing (dmesg -t, journalctl
    -o cat), a dmesg timestamp (or dmesg -r / -x's, /dev/kmsg's prefix),
    or a syslog header (``TIMESTAMP HOST ``, which holds no ``": "``) with
    the tag ``kernel``, optionally followed by the kernel's timestamp."""
    if at == 0:
        return True
    if _RING.fullmatch(line, 0, at):
        return True
    end = at
    if line[at - 2 : at] == b"] ":
        bracket = line.rfind(b"[", 0, at)
        if bracket == 0:
            return True  # dmesg: [ 1234.567890] or [Sun Nov 29 16:00:00 2026]
        end = bracket
    return end >= 8 and line[end - 8 : end] == b"kernel: " and line.find(b": ") == end - 2 and (end == 8 or line[end - 9 : end - 8] == b" ")
