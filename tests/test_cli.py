"""The command line, in process: outputs, exit codes, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, apparmor_compile

from corral.cli import main

AGENT = str(ROOT / "examples/agent-http2.toml")


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", AGENT]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{AGENT}: ok: policy 'agent-http2': ")


def test_check_ir_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", AGENT, "--ir"]) == 0
    ir = json.loads(capsys.readouterr().out)
    assert ir["name"] == "agent-http2"
    assert {"host": "api.example.com", "port": 443} in [{k: p[k] for k in ("host", "port")} for p in ir["hosts"]]
    assert ir["alpn"][0]["protocols"] == ["h2"]


def test_compile_writes_every_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", AGENT, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in tmp_path.iterdir())
    from corral.backends import BACKENDS

    assert names == sorted(f"agent-http2{t.suffix}" for t in BACKENDS.values())
    assert {".apparmor", ".seccomp.json", ".bpf", ".caps", ".landlock.json", ".docker.yaml", ".systemd.conf", ".k8s.yaml", ".nft", ".egress.json"} == {t.suffix for t in BACKENDS.values()}
    assert f"written   {tmp_path}/agent-http2.apparmor" in out
    assert "not enforced by any selected target: none" in out
    assert apparmor_compile((tmp_path / "agent-http2.apparmor").read_bytes(), tmp_path).returncode == 0
    caps = (tmp_path / "agent-http2.caps").read_text()
    assert "# --cap-drop=ALL" in caps


def test_compile_never_silently_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "agent-http2.apparmor"
    target.write_text("my hand-written profile\n")
    assert main(["compile", AGENT, "-t", "apparmor", "-t", "seccomp", "-t", "landlock", "-t", "nftables", "-t", "egress", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"{target}: error[C004]: exists with other content\n  = hint: pass --force to replace it\n"
    assert target.read_text() == "my hand-written profile\n"
    assert main(["compile", AGENT, "-t", "apparmor", "-t", "seccomp", "-t", "landlock", "-t", "nftables", "-t", "egress", "-o", str(tmp_path), "--force"]) == 0
    assert f"replaced  {target}" in capsys.readouterr().out
    assert main(["compile", AGENT, "-t", "apparmor", "-t", "seccomp", "-t", "landlock", "-t", "nftables", "-t", "egress", "-o", str(tmp_path)]) == 0
    assert f"unchanged {target}" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_compile_to_stdout_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", AGENT, "-t", "seccomp", "-t", "apparmor", "-t", "landlock", "-o", "-", "--allow-unenforced"]) == 2
    assert "-o - prints one target" in capsys.readouterr().err


def test_compile_refuses_unenforced_restrictions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", AGENT, "-t", "seccomp", "-o", "-", "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{AGENT}: error[C001]: ")
    assert "ports (would be enforced by landlock, nftables, egress)" in err
    assert "host names (would be enforced by nftables, egress): tcp connect api.example.com 443" in err
    assert "udp connect 53" in err  # the resolver's UDP port: only the packet filter can hold it
    assert "files (would be enforced by apparmor, landlock, systemd, kubernetes)" in err
    assert "--allow-unenforced" in err


def test_compile_allow_unenforced_prints_the_gap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", AGENT, "-t", "seccomp", "-o", "-", "--allow-unenforced"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "not enforced by any selected target: " in captured.err
    assert "tcp connect api.example.com 443" in captured.err


def test_bad_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compile", AGENT, "-t", "selinux"])
    assert info.value.code == 2
    assert "invalid choice: 'selinux'" in capsys.readouterr().err


def test_flags_list_and_detail(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags"]) == 0
    out = capsys.readouterr().out
    assert "[Networking]" in out and "  dns " in out
    assert main(["flags", "ping"]) == 0
    assert "Capabilities:\n    net_raw" in capsys.readouterr().out
    assert main(["flags", "pnig"]) == 2
    assert capsys.readouterr().err == "corral flags: error[A003]: unknown flag 'pnig'\n  = hint: did you mean 'ping'?\n"
