"""One error anatomy: every code corral raises is documented in
docs/errors.md (what, why, example, fix), the document is generated and
fresh, each example policy really produces its code, and no library module
formats "corral VERB: error:" itself (only the command line renders)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

from corral.docs import error_codes, errors_markdown, example_output

SRC = ROOT / "src/corral"
CODES = error_codes()
#: A code given to an error or a diagnostic in the source: code="X001", "E004", ...
_RAISED = re.compile(r'(?:code\s*=\s*|\(|, )"([ECIRAFTX]\d{3})"')


def _raised() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(_RAISED.findall(path.read_text()))
    return found


def test_every_raised_code_is_documented_and_every_documented_code_is_raised() -> None:
    raised = _raised()
    assert raised - set(CODES) == set(), "document these in src/corral/data/errors.toml"
    assert set(CODES) - raised == set(), "these documented codes are raised nowhere"
    for code, entry in CODES.items():
        assert entry["what"] and entry["why"] and entry["fix"], code
        assert ("policy" in entry) != ("example" in entry), code


def test_docs_errors_md_is_fresh() -> None:
    assert (ROOT / "docs/errors.md").read_text() == errors_markdown(), "regenerate: corral errors --markdown > docs/errors.md"


@pytest.mark.parametrize("code", [c for c, e in CODES.items() if "policy" in e])
def test_each_example_policy_produces_its_code(code: str) -> None:
    out = example_output(CODES[code]["policy"])
    assert re.search(rf"error\[{code}\]", out), out


def test_no_library_module_renders_errors() -> None:
    renderers = {"cli.py", "_base.py", "errors.py"}
    for path in SRC.rglob("*.py"):
        if path.name in renderers:
            continue
        text = path.read_text()
        assert not re.search(r'"corral [a-z]+: error', text), f"{path.relative_to(SRC)} formats an error itself"
        assert "= hint:" not in text, f"{path.relative_to(SRC)} formats a hint itself"


def test_corral_errors_explains_a_code() -> None:
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "errors", "E003"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("E003: A value of the wrong type.")
    assert "example.toml:2:9: error[E003]: Networking.Flags must be a list of strings, found str" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "corral.cli", "errors", "E999"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("corral errors: error[A007]: unknown error code 'E999'")
