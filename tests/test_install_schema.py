"""corral install/uninstall (what this kernel allows: AppArmor is compiled,
not loaded, here) and the JSON Schema for editors."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT

from corral.install import apparmor_enabled
from corral.policy.jsonschema import schema_text

AGENT = str(ROOT / "examples/agent-http2.toml")


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True)


@pytest.mark.skipif(apparmor_enabled(), reason="this checks the behaviour on a kernel without AppArmor")
def test_install_without_apparmor_writes_nothing(tmp_path: Path) -> None:
    proc = corral("install", AGENT, "--dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("corral install: error[I002]: this kernel has no AppArmor enabled")
    assert list(tmp_path.iterdir()) == []


def test_install_write_only_validates_then_writes(tmp_path: Path) -> None:
    old = tmp_path / "corral.agent-http2"
    old.write_text("# an older profile\n")
    proc = corral("install", AGENT, "--dir", str(tmp_path), "--write-only", "--complain", "--seccomp-to", str(tmp_path / "seccomp"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("check   ") and proc.stdout.splitlines()[0].endswith("-Q -S (the profile compiles)")
    text = old.read_text()
    assert "profile agent-http2 flags=(complain) {" in text
    assert json.loads((tmp_path / "seccomp/agent-http2.json").read_text())["defaultAction"] == "SCMP_ACT_ERRNO"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corral.agent-http2", "seccomp"]  # no temporary files left
    gone = corral("uninstall", "agent-http2", "--dir", str(tmp_path), "--write-only", "--seccomp-to", str(tmp_path / "seccomp"))
    assert gone.returncode == 0 and not old.exists() and not (tmp_path / "seccomp/agent-http2.json").exists()


def test_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    proc = corral("install", AGENT, "--dir", str(tmp_path), "--write-only", "--dry-run")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [
        f"would check   {proc.stdout.split()[2]} -Q -S (the profile compiles)",
        f"would write   {tmp_path}/corral.agent-http2",
        "would skip    loading: --write-only",
    ]
    assert list(tmp_path.iterdir()) == []


def test_uninstall_of_nothing_is_a_clear_error(tmp_path: Path) -> None:
    proc = corral("uninstall", "nope", "--dir", str(tmp_path), "--write-only")
    assert proc.returncode == 2 and f"{tmp_path}/corral.nope does not exist" in proc.stderr


# -- JSON Schema ------------------------------------------------------------------

SCHEMA = json.loads((ROOT / "src/corral/data/policy.schema.json").read_text())


def test_shipped_schema_is_fresh() -> None:
    assert (ROOT / "src/corral/data/policy.schema.json").read_text() == schema_text(), "regenerate: corral schema > src/corral/data/policy.schema.json"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_examples_validate_against_the_schema(example: Path) -> None:
    jsonschema.validate(tomllib.loads(example.read_text()), SCHEMA)


@pytest.mark.parametrize(
    "text",
    ['Descripton = "x"', '[Networking]\nProtocols = ["quic"]', '[User]\nCapabilities = ["CAP_NET_RAW"]', '[Misc]\nSyscalls = ["opne"]', '[[Test]]\nProbe = "wirte"\nExpect = "deny"'],
)
def test_schema_rejects_what_the_loader_rejects(text: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tomllib.loads(text), SCHEMA)
