"""corral lint: each rule on its own fixture (the ruff way), the forum
profile reviewed as the thread did, and the documentation kept fresh."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from corral.analyze.aaparse import parse_profile
from corral.analyze.lint import RULES, rules_markdown
from corral.analyze.view import views_of
from corral.analyze.lint import lint_view

FIXTURES = ROOT / "tests/fixtures/lint"

#: For each rule's fixture: the (line, code) findings of that rule, exactly.
EXPECTED = {
    "CR001": [(3, "CR001"), (4, "CR001"), (5, "CR001")],
    "CR002": [(3, "CR002"), (4, "CR002")],
    "CR003": [(3, "CR003"), (5, "CR003")],
    "CR004": [(3, "CR004"), (4, "CR004")],
    "CR005": [(3, "CR005"), (4, "CR005"), (6, "CR005")],
    "CR006": [(3, "CR006"), (4, "CR006")],
    "CR007": [(3, "CR007"), (5, "CR007"), (6, "CR007")],  # line 4: ptrace (readby) is inspection only
    "CR008": [(3, "CR008"), (4, "CR008"), (5, "CR008")],
    "CR009": [(3, "CR009"), (5, "CR009"), (8, "CR009")],
    "CR010": [(3, "CR010")],
    "CR011": [(4, "CR011")],
    "CR012": [(5, "CR012")],  # stdio's and tty's filtered ioctls (line 3) are not flagged
}


def findings(path: Path, code: str | None = None) -> list[tuple[int, str]]:
    views, diagnostics = views_of(str(path))
    assert diagnostics == []
    out = [(d.span.line, d.code) for v in views for d in lint_view(v) if d.span.file == str(path)]
    return sorted(f for f in out if code is None or f[1] == code)


def test_every_rule_has_a_fixture_and_docs() -> None:
    assert sorted(EXPECTED) == sorted(RULES)
    for code, rule in RULES.items():
        doc = rule.__doc__ or ""
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert section in doc, (code, section)
        assert rule.SEVERITY in ("info", "warning", "error") and rule.NAME


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_rule_on_its_fixture(code: str) -> None:
    fixture = FIXTURES / f"{code}.apparmor"
    if not fixture.exists():
        fixture = FIXTURES / f"{code}.toml"  # a rule about system calls reads a policy
    assert findings(fixture, code) == EXPECTED[code]


def test_forum_profile_review() -> None:
    """The thread's findings, in a second: /tmp writable, inbound allowed
    while claiming outbound, deny rules that change nothing, no ABI."""
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "lint", "tests/fixtures/forum-agent-http2.apparmor"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "tests/fixtures/forum-agent-http2.apparmor:25:3: CR001 `/tmp/**` makes the shared /tmp writable" in lines
    assert "tests/fixtures/forum-agent-http2.apparmor:26:3: CR001 `/var/tmp/**` makes the shared /var/tmp writable" in lines
    assert any(l.startswith("tests/fixtures/forum-agent-http2.apparmor:18:3: CR011 inbound connections are allowed although") for l in lines)
    assert "tests/fixtures/forum-agent-http2.apparmor:12:3: CR009 `deny capability sys_module` denies what nothing grants [info]" in lines
    assert any(":6:1: CR010 profile 'agent-http2-only' declares no ABI" in l for l in lines)


def test_corral_policies_are_linted_too(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('Description = "outbound-only client"\n[Filesystem]\nFlags = ["tmp"]\n[Networking]\nFlags = ["incoming"]\nProtocols = ["tcp"]\n[User]\nCapabilities = ["sys_admin"]\n')
    codes = findings(policy)
    assert (3, "CR001") in codes and (8, "CR003") in codes and (5, "CR011") in codes


def test_json_output_and_severity_threshold() -> None:
    fixture = str(FIXTURES / "CR009.apparmor")
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "lint", "--json", fixture], capture_output=True, text=True)
    assert proc.returncode == 0  # info findings only: below the default threshold (warning)
    data = json.loads(proc.stdout)
    assert {(d["line"], d["code"], d["severity"]) for d in data} == {(3, "CR009", "info"), (5, "CR009", "info"), (8, "CR009", "info")}
    strict = subprocess.run([sys.executable, "-m", "corral.cli", "lint", "--severity", "info", fixture], capture_output=True, text=True)
    assert strict.returncode == 1


def test_explain() -> None:
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "lint", "--explain", "cr001"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("CR001 (shared-tmp-writable) [error]\n\n## What it does")
    bad = subprocess.run([sys.executable, "-m", "corral.cli", "lint", "--explain", "CR999"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown rule 'CR999'" in bad.stderr


def test_docs_lint_rules_md_is_fresh() -> None:
    assert (ROOT / "docs/lint-rules.md").read_text() == rules_markdown(), "regenerate: corral lint --markdown > docs/lint-rules.md"


CORPUS = sorted(f for f in glob.glob("/etc/apparmor.d/*") + glob.glob("/usr/share/apparmor/extra-profiles/*") if os.path.isfile(f) and not f.endswith("README"))


@pytest.mark.skipif(len(CORPUS) < 20, reason="Debian's apparmor-profiles packages are not installed (dev.sh installs them)")
def test_debian_corpus_parses_and_lints() -> None:
    unknown = []
    rules = 0
    for path in CORPUS:
        result = parse_profile(path)
        unknown += [str(d.span) for d in result.diagnostics if d.code == "A001"]
        rules += sum(len(p.rules) for top in result.profiles for p in top.all_profiles())
        for view in views_of(path)[0]:
            list(lint_view(view))
    assert unknown == []
    assert rules > 10000


def test_unknown_construct_is_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.apparmor"
    path.write_text("abi <abi/3.0>,\nprofile p {\n  frobnicate the thing,\n  /etc/hosts r,\n}\n")
    result = parse_profile(path)
    assert [(d.span.line, d.code, d.message) for d in result.diagnostics] == [(3, "A001", "unknown rule: 'frobnicate the thing'")]
    assert [r.path for r in result.profiles[0].rules] == ["/etc/hosts"]
