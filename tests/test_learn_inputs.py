"""Issue 14, learn's inputs: a hostile log line is a counted, explained
line (``corral learn`` reads logs line by line and a bad line is never
fatal), never a traceback; a value no policy can hold is named and left
out, never written mangled.

* journald writes a non-UTF-8 MESSAGE as an array of bytes: an array
  holding 300 (or true) is not one;
* JSON nested 5,000 deep overflowed Python's parser (RecursionError);
* a path's non-UTF-8 bytes (strace's ``\\351``, AppArmor's hex names)
  became U+FFFD, a different file: now kept as the bytes they are, and a
  policy (TOML, UTF-8) cannot hold them, so they are named and left out;
* a newline in an event's field (a run record's name, a path) must not
  reach the policy or the terminal raw.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corral.policy import load_policy_text

CORRAL = str(Path(sys.executable).with_name("corral"))
DEEP = "[" * 5000 + "]" * 5000


def _learn(tmp_path: Path, data: bytes, into: str = "new.toml") -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "log"
    log.write_bytes(data)
    policy = tmp_path / into
    run = subprocess.run([CORRAL, "learn", str(log), "--into", str(policy)], capture_output=True, text=True, errors="strict")
    assert "Traceback" not in run.stderr, run.stderr
    text = policy.read_text(encoding="utf-8") if policy.exists() else ""
    if text:
        load_policy_text(text, str(policy))
    return run, text


def test_a_message_byte_array_with_values_over_255_is_a_line_not_understood(tmp_path: Path) -> None:
    lines = [{"MESSAGE": [97, 300, 98], "_TRANSPORT": "kernel"}, {"MESSAGE": [True], "_TRANSPORT": "kernel"}, {"MESSAGE": [], "_TRANSPORT": "kernel"}]
    run, _ = _learn(tmp_path, "".join(json.dumps(x) + "\n" for x in lines).encode())
    assert run.returncode == 0, run.stderr
    assert "3 lines not understood" in run.stderr and "holding 300, not a byte (0-255)" in run.stderr, run.stderr
    assert f"{tmp_path / 'log'}:2: MESSAGE is an array holding true" in run.stderr, run.stderr  # located


def test_json_nested_5000_deep_is_a_line_not_understood(tmp_path: Path) -> None:
    data = f'{{"corral_run_log": 1, "policy": {DEEP}}}\n{{"event": {DEEP}}}\n{{"MESSAGE": {DEEP}}}\n'
    run, _ = _learn(tmp_path, data.encode())
    assert run.returncode == 0, run.stderr
    assert "3 lines not understood" in run.stderr and "RecursionError" in run.stderr, run.stderr
    for n in (1, 2, 3):
        assert f"{tmp_path / 'log'}:{n}: " in run.stderr, run.stderr


NON_UTF8 = (  # the journal's line first: a file's format is its first line's
    json.dumps({"_TRANSPORT": "kernel", "MESSAGE": list(b'audit: type=1400 audit(1700000000.1:3): apparmor="ALLOWED" operation="open" profile="p" name="/srv/ok" pid=1 requested_mask="r" denied_mask="r" comm="\xff"')}).encode()
    + b"\n"
    + b'700 openat(AT_FDCWD, "/srv/data/caf\\351.txt", O_RDONLY) = 3\n'
    + b'type=AVC msg=audit(1700000000.1:2): apparmor="ALLOWED" operation="open" profile="p" name=2F7372762F6361FF pid=1 comm="a" requested_mask="r" denied_mask="r" fsuid=0 ouid=0\n'
)


def test_non_utf8_path_bytes_are_named_never_replaced(tmp_path: Path) -> None:
    run, text = _learn(tmp_path, NON_UTF8)
    assert run.returncode == 0, run.stderr
    assert "\ufffd" not in text and "\ufffd" not in run.stderr, (text, run.stderr)
    assert "'/srv/data/caf\\xe9.txt' left out of Filesystem.ReadOnly: it is not UTF-8" in run.stderr, run.stderr
    assert "'/srv/ca\\xff' left out of Filesystem.ReadOnly: it is not UTF-8" in run.stderr, run.stderr
    assert '"/srv/ok"' in text, text  # a byte array MESSAGE of the kernel's is read
    printed = subprocess.run([CORRAL, "learn", str(tmp_path / "log")], capture_output=True, text=True)
    assert printed.returncode == 0 and "\ufffd" not in printed.stdout and "is not UTF-8" in printed.stdout, printed


RECORD = (
    '{"corral_run_log": 1, "policy": "p"}\n'
    '{"event": "capability", "name": "net_raw\\nX"}\n'
    '{"event": "sockopt", "name": "a\\nb"}\n'
    '{"event": "socket", "family": "inet\\n", "type": "stream"}\n'
    '{"event": "call", "name": "read\\n# x"}\n'
    '{"event": "capability", "name": "\\udcff"}\n'
    '700 openat(AT_FDCWD, "/srv/a\\nb", O_RDONLY) = 3\n'
    '700 mkdir("/srv/x\\ny/z", 0777) = 0\n'
)


def test_a_newline_in_an_event_field_reaches_neither_policy_nor_terminal(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('Name = "p"\n\n[Filesystem]\nReadOnly = [\n  "/srv/keep",\n]\n')
    for into in ("new.toml", "p.toml"):  # created, and merged into an existing policy
        run, text = _learn(tmp_path, RECORD.encode(), into)
        assert run.returncode == 0, run.stderr
        assert text.count("\n") == len(text.splitlines()) and "net_raw" not in text.replace("# NOTE", "#").split("#")[0], text
        notes = [line for line in run.stderr.splitlines() if line.startswith("corral learn: note:")]
        for bad in ("net_raw\\nX", "a\\nb", "read\\n# x", "/srv/a\\nb", "/srv/x\\ny/z", "'inet\\n'", "'\\xff'"):
            assert any(bad in n for n in notes), (bad, run.stderr)
        assert all(line.startswith(("corral learn:", "    ")) for line in run.stderr.splitlines()), run.stderr  # one line each
