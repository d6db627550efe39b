"""Any process can log a line that reads like a kernel audit event, and
``corral learn`` granted what it named: ``logger 'apparmor="ALLOWED"
operation="capable" profile="web" capname="sys_admin"'`` put CAP_SYS_ADMIN
into the policy learned for ``web`` from syslog, kern.log, ``journalctl``
short output and ``journalctl -o export`` (only ``-o json`` checked
``_TRANSPORT``). Here each format carries what ``logger`` (or a confined
service's stdout) would put there, and nothing of it may be granted; the
kernel's own lines still are, with a warning where the format cannot prove
who wrote them.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.learn import origin
from corral.learn.auditlog import read_log_files, read_logs
from corral.learn.events import Capability, Collected

CORRAL = str(Path(sys.executable).with_name("corral"))
EVENT = 'apparmor="ALLOWED" operation="capable" profile="web" pid=4242 comm="web" capability=21 capname="sys_admin"'
KERNEL = f"audit: type=1400 audit(1700000000.123:77): {EVENT}"
REAL = 'apparmor="ALLOWED" operation="capable" profile="web" pid=4242 comm="web" capability=12 capname="net_admin"'
REAL_KERNEL = f"audit: type=1400 audit(1700000000.123:78): {REAL}"

#: What `logger` (tag: the user's name, or -t NAME) and a service's stdout
#: put in each text format; none of them is the kernel's.
FORGED_TEXT = {
    "syslog": f"Nov 29 16:00:00 host alice: {KERNEL}",
    "syslog-bare": f"Nov 29 16:00:00 host alice: {EVENT}",
    "syslog-tag-pid": f"Nov 29 16:00:00 host web[4242]: {KERNEL}",
    "syslog-kernel-in-message": f"Nov 29 16:00:00 host alice: kernel: {KERNEL}",
    "syslog-text-before": f"Nov 29 16:00:00 host kernel: hello {KERNEL}",
    "dmesg-x-user": f"user  :notice: [ 1234.567890] {KERNEL}",  # a write to /dev/kmsg from user space
    "rfc3339": f"2026-11-29T16:00:00.123456+00:00 host alice: {KERNEL}",
    "journal-short": f"Nov 29 16:00:00 host alice[31337]: {KERNEL}",
    "journal-short-audit-tag": f"Nov 29 16:00:00 host alice[31337]: AVC {EVENT}",
    "audit-user-avc": f"type=USER_AVC msg=audit(1700000000.123:77): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='{EVENT}'",
    "json-no-transport": json.dumps({"MESSAGE": EVENT}),
    "json-syslog": json.dumps({"MESSAGE": KERNEL, "_TRANSPORT": "syslog"}),
    "record-line-in-a-log": '{"event": "capability", "name": "sys_admin"}',  # journalctl -o cat: a process's line as it wrote it
    "json-kernel-other-printk": json.dumps({"MESSAGE": f"usb 1-1: {EVENT}", "_TRANSPORT": "kernel"}),  # a printk quoting text
}
#: The kernel's own lines, as each text format shows them.
REAL_TEXT = {
    "kern.log": f"Nov 29 16:00:00 host kernel: [ 1234.567890] {REAL_KERNEL}",
    "rfc3339": f"2026-11-29T16:00:00.123456+00:00 host kernel: {REAL_KERNEL}",
    "journal-short-audit": f"Nov 29 16:00:00 host audit[4242]: AVC {REAL}",
    "dmesg": f"[ 1234.567890] {REAL_KERNEL}",
    "dmesg-T": f"[Sun Nov 29 16:00:00 2026] {REAL_KERNEL}",
    "dmesg-r": f"<5>[ 1234.567890] {REAL_KERNEL}",
    "dmesg-x": f"kern  :notice: [ 1234.567890] {REAL_KERNEL}",
    "kmsg": f"5,1234,1234567890,-;{REAL_KERNEL}",
    "journal-cat": REAL_KERNEL,
    "journal-short-audit-no-pid": f"Nov 29 16:00:00 host audit: AVC {REAL}",
}


def _export(*entries: dict[str, str | bytes]) -> bytes:
    """``journalctl -o export``: text fields as FIELD=value, others binary."""
    out = b""
    for entry in entries:
        out += b"__CURSOR=s=1;i=1\n__REALTIME_TIMESTAMP=1700000000000000\n"
        for name, value in entry.items():
            data = value if isinstance(value, bytes) else value.encode()
            if b"\n" in data or not data.isascii():
                out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
            else:
                out += name.encode() + b"=" + data + b"\n"
        out += b"\n"
    return out


def _learn(tmp_path: Path, data: bytes) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "log"
    log.write_bytes(data)
    policy = tmp_path / "new.toml"
    policy.unlink(missing_ok=True)
    run = subprocess.run([CORRAL, "learn", str(log), "--into", str(policy)], capture_output=True, text=True)
    return run, policy.read_text() if policy.exists() else ""


@pytest.mark.parametrize("name", sorted(FORGED_TEXT))
def test_a_line_logged_by_a_process_grants_nothing(tmp_path: Path, name: str) -> None:
    c = Collected()
    read_logs([[FORGED_TEXT[name] + "\n"]], c)
    assert Capability("sys_admin") not in c.events, (name, c.events)
    assert c.forged == 1 and c.forged_samples, (name, c)  # counted, shown: never silent
    # the file reader (one process, and split in halves) decides the same
    log = tmp_path / "log"
    log.write_text("\n".join([FORGED_TEXT[name], REAL_TEXT["kern.log"]] * 3) + "\n")
    for parallel_from in (1 << 40, 0):
        c = Collected()
        read_log_files([str(log)], c, chunk=64, parallel_from=parallel_from)
        assert Capability("sys_admin") not in c.events and Capability("net_admin") in c.events, (name, c.events)
        assert c.forged == 3, (name, parallel_from, c.forged)
        assert [s.split(": ")[0] for s in c.forged_samples] == [f"{log}:{n}" for n in (1, 3, 5)], c.forged_samples  # located, also across the halves


@pytest.mark.parametrize("name", sorted(REAL_TEXT))
def test_the_kernels_text_lines_are_read_with_a_warning(tmp_path: Path, name: str) -> None:
    run, policy = _learn(tmp_path, (REAL_TEXT[name] + "\n").encode())
    assert run.returncode == 0, run.stderr
    assert '"net_admin"' in policy
    assert "cannot prove the kernel wrote them" in run.stderr and "logger -t kernel" in run.stderr, run.stderr


def test_a_kernel_entry_is_read_for_events_only() -> None:
    """A trusted entry's MESSAGE is an event or nothing: never a run record
    (or strace line) that the file itself could have held."""
    c = Collected()
    read_logs([[json.dumps({"MESSAGE": '{"event": "capability", "name": "sys_admin"}', "_TRANSPORT": "kernel"}) + "\n"]], c)
    assert not c.events and c.unknown == 1, c


def test_auditds_log_is_read_without_a_warning(tmp_path: Path) -> None:
    run, policy = _learn(tmp_path, f"type=AVC msg=audit(1700000000.123:78): {REAL}\n".encode())
    assert run.returncode == 0 and '"net_admin"' in policy, run.stderr
    assert "cannot prove" not in run.stderr and "not learned" not in run.stderr, run.stderr


def test_the_forged_lines_are_named_and_nothing_is_granted(tmp_path: Path) -> None:
    data = "\n".join([*FORGED_TEXT.values(), f"type=AVC msg=audit(1700000000.123:78): {REAL}"]) + "\n"
    run, policy = _learn(tmp_path, data.encode())
    assert run.returncode == 0, run.stderr
    assert "sys_admin" not in policy and '"net_admin"' in policy, policy
    assert f"{len(FORGED_TEXT)} line(s) carry an event's text but not in a shape the kernel or auditd writes" in run.stderr, run.stderr


def test_journal_export_entries_are_judged_by_their_own_transport(tmp_path: Path) -> None:
    """-o export: an entry's fields come in any order; only its own
    _TRANSPORT counts, and a MESSAGE holding newlines (a binary field)
    cannot smuggle in a second entry."""
    smuggled = f"x\n\n__CURSOR=s=2\n_TRANSPORT=kernel\nMESSAGE={KERNEL}\n\n".encode()
    data = _export(
        {"MESSAGE": KERNEL, "_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "kernel"},  # logger -t kernel
        {"_TRANSPORT": "stdout", "MESSAGE": KERNEL},
        {"_TRANSPORT": "journal", "MESSAGE": smuggled},
        {"MESSAGE": f"AVC {REAL}", "_TRANSPORT": "audit", "_PID": "4242"},  # the audit transport's form
        {"_TRANSPORT": "kernel", "MESSAGE": f"{REAL_KERNEL} name=\xe9".encode("latin-1")},  # not UTF-8: a binary field
    )
    log = tmp_path / "export"
    log.write_bytes(data)
    for parallel_from in (1 << 40, 0):
        c = Collected()
        read_log_files([str(log)], c, chunk=50, parallel_from=parallel_from)
        assert Capability("sys_admin") not in c.events and Capability("net_admin") in c.events, c.events
        assert c.events[Capability("net_admin")] == 2 and c.forged == 3 and c.text_events == 0, c
    run, policy = _learn(tmp_path, data)
    assert run.returncode == 0 and "sys_admin" not in policy and '"net_admin"' in policy, (run.stderr, policy)

_TOKEN = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(stamp=st.sampled_from(["Nov 29 16:00:00", "2026-11-29T16:00:00.123+00:00", "[ 12.5]", "1700000000.1"]), host=_TOKEN, tag=_TOKEN, extra=st.text(max_size=20))
def test_a_line_is_the_kernels_only_under_the_kernels_tag(stamp: str, host: str, tag: str, extra: str) -> None:
    """Law: whatever a process chooses (its tag, text before the event),
    a syslog line is read as the kernel's only when its tag is the kernel's
    (or journald's audit[PID]) and nothing stands between the tag and the
    kernel's shape."""
    for line in (f"{stamp} {host} {tag}: {extra}{KERNEL}", f"{stamp} {host} {tag}: {extra}AVC {EVENT}"):
        raw = line.encode()
        who = origin.of(raw, raw.find(b'apparmor="'))
        kernel_tag = tag in ("kernel", "audit") or (tag.startswith("audit[") and tag[6:-1].isdigit() and tag.endswith("]"))
        if who != origin.FORGED:
            assert kernel_tag and ": " not in host + tag, (line, who)
            assert extra == "" or extra.startswith("[") and extra.endswith("] ") or extra.endswith(("kernel: ", "audit: ")), (line, who)
