"""The Landlock target, handed to a landlockconfig consumer.

The artifact must conform to landlock-lsm/landlockconfig's JSON format (the
schema's constraints, transcribed below from its schema/landlockconfig.json)
and be applied by a strict consumer (tests/consumers/landlockconfig_apply.py,
raw Landlock system calls, no corral code) without a single failing
``landlock_add_rule``; then the kernel must answer as the policy says, as
root and as nobody.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import policies

from corral.backends import BACKENDS
from corral.backends.landlock import landlockconfig, to_document
from corral.landlock_rights import FILE_RIGHTS

from conftest import EXAMPLES, ir_of

CONSUMER = Path(__file__).resolve().parent / "consumers" / "landlockconfig_apply.py"
BUSYBOX = shutil.which("busybox")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]

_FS = ["abi.all", "abi.read_execute", "abi.read_write", "execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file",
       "make_char", "make_dir", "make_reg", "make_sock", "make_fifo", "make_block", "make_sym", "refer", "truncate", "ioctl_dev"]  # fmt: skip


def _list(items: dict[str, object]) -> dict[str, object]:
    return {"type": "array", "minItems": 1, "items": items}


#: landlockconfig's JSON schema (draft 7), its constraints restated.
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "abi": {"type": "integer", "minimum": 1, "maximum": 2147483647},
        "variable": _list({"type": "object", "required": ["name"], "additionalProperties": False,
                           "properties": {"name": {"type": "string"}, "literal": _list({"type": "string"})}}),
        "ruleset": _list({"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
            "handledAccessFs": _list({"enum": _FS}),
            "handledAccessNet": _list({"enum": ["abi.all", "bind_tcp", "connect_tcp"]}),
            "scoped": _list({"enum": ["abi.all", "abstract_unix_socket", "signal"]}),
        }}),
        "pathBeneath": _list({"type": "object", "required": ["allowedAccess", "parent"], "additionalProperties": False,
                              "properties": {"allowedAccess": _list({"enum": _FS}), "parent": _list({"type": "string"})}}),
        "netPort": _list({"type": "object", "required": ["allowedAccess", "port"], "additionalProperties": False, "properties": {
            "allowedAccess": _list({"enum": ["abi.all", "bind_tcp", "connect_tcp"]}),
            "port": _list({"type": "integer", "minimum": 0, "maximum": 18446744073709551615}),
        }}),
    },
    "anyOf": [{"required": [k]} for k in ("variable", "ruleset", "pathBeneath", "netPort")],
    "additionalProperties": False,
}  # fmt: skip


def _landlock_json(text: str, tmp: Path, name: str = "t") -> Path:
    out = tmp / f"{name}.landlock.json"
    out.write_bytes(BACKENDS["landlock"].emit(ir_of(text, f"{name}.toml")).content)
    return out


def _apply(doc: Path, *cmd: str, nobody: bool = False) -> subprocess.CompletedProcess[str]:
    prefix = NOBODY if nobody else []
    return subprocess.run([*prefix, sys.executable, "-I", str(CONSUMER), str(doc), "--", *cmd], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_conforms_to_the_schema(example: Path) -> None:
    doc = json.loads(BACKENDS["landlock"].emit(ir_of(example.read_text(), str(example))).content)
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    assert isinstance(doc["abi"], int)


def test_the_empty_policy_conforms() -> None:
    doc = json.loads(BACKENDS["landlock"].emit(ir_of("", "empty.toml")).content)
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    assert "pathBeneath" not in doc and "netPort" not in doc and doc["abi"] == 6


def test_a_dollar_in_a_path_is_not_a_landlockconfig_variable(tmp_path: Path) -> None:
    odd = tmp_path / "a$$b"
    odd.mkdir()
    (odd / "f").write_text("x")
    doc = _landlock_json(f'[Filesystem]\nReadOnly = ["{odd}/**"]\nExec = ["{BUSYBOX or "/bin/true"}"]\n', tmp_path)
    assert any(f"{tmp_path}/a$$$$b" in g["parent"] for g in json.loads(doc.read_text())["pathBeneath"])
    if BUSYBOX:  # and the consumer reads it back as the directory it is
        assert _apply(doc, BUSYBOX, "cat", str(odd / "f")).stdout == "x"


def test_the_strict_consumer_refuses_directory_rights_on_a_file(tmp_path: Path) -> None:
    """The consumer is strict (so the tests below can fail): the old form of
    the artifact, directory rights on /dev/null, is refused with EINVAL."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"abi": 1, "ruleset": [{"handledAccessFs": ["read_file", "read_dir"]}],
                               "pathBeneath": [{"allowedAccess": ["read_file", "read_dir"], "parent": ["/dev/null"]}]}))  # fmt: skip
    result = _apply(bad, "/bin/true")
    assert result.returncode == 3 and "Invalid argument" in result.stderr, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_applies_without_a_failing_rule(example: Path, tmp_path: Path) -> None:
    ir = ir_of(example.read_text(), str(example))
    raw, _ = to_document(ir)
    assert any(not os.path.isdir(p) and os.path.exists(p) for g in raw["pathBeneath"] for p in g["parent"]), "expects file rules"
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(landlockconfig(raw)))
    result = _apply(doc, "/bin/true") if os.path.exists("/bin/true") else pytest.skip("no /bin/true")
    assert result.returncode in (0, 126, 127) and "landlock_add_rule" not in result.stderr, result.stderr


@pytest.mark.skipif(BUSYBOX is None, reason="busybox-static is installed by dev.sh")
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_the_kernel_enforces_it_as_the_policy_says(nobody: bool) -> None:
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    with tempfile.TemporaryDirectory(prefix="corral-llc-") as tmp:  # pytest's tmp is private to root
        _enforced(Path(tmp), nobody)


def _enforced(tmp_path: Path, nobody: bool) -> None:
    ro, rw, other = tmp_path / "ro", tmp_path / "rw", tmp_path / "other"
    for d in (ro, rw, other):
        d.mkdir()
        (d / "f").write_text("content\n")
    note = tmp_path / "note.txt"
    note.write_text("note\n")
    for p in (tmp_path, ro, rw, other, note, ro / "f", rw / "f", other / "f"):
        os.chmod(p, 0o755 if p == tmp_path else 0o777 if p.is_dir() else 0o666)
    policy = f"""
[Filesystem]
ReadOnly = ["{ro}/**", "{note}"]
Writable = ["{rw}/**", "/dev/null"]
Exec = ["{BUSYBOX}"]
"""
    doc = _landlock_json(policy, tmp_path)
    os.chmod(doc, 0o644)
    assert BUSYBOX is not None

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return _apply(doc, BUSYBOX, "sh", "-c", script, nobody=nobody)

    assert sh(f"cat {ro}/f {note} && ls {ro}").returncode == 0
    assert sh(f"echo x > {rw}/new && cat {rw}/new && rm {rw}/f && mkdir {rw}/d && echo y > /dev/null").returncode == 0
    for attack in (f"echo x > {ro}/f", f"echo x > {ro}/new", f"cat {other}/f", f"ls {other}", f"echo x > {note}", f"ls {tmp_path}", "cat /etc/hostname"):
        result = sh(attack)
        assert result.returncode != 0 and "landlock_add_rule" not in result.stderr, (attack, result.stderr)
        assert "Permission denied" in result.stderr, (attack, result.stderr)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_any_policy_conforms_to_the_schema(text: str) -> None:
    """Law: whatever the policy, the document is landlockconfig's format."""
    doc = json.loads(BACKENDS["landlock"].emit(ir_of(text, "law.toml")).content)
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    for rule in doc.get("pathBeneath", []):
        for parent in rule["parent"]:
            if os.path.exists(parent.replace("$$", "$")) and not os.path.isdir(parent.replace("$$", "$")):
                assert set(rule["allowedAccess"]) <= set(FILE_RIGHTS), (parent, rule)
