"""The README's Python example runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import ROOT


def test_readme_python_example_runs(monkeypatch) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has a Python example"
    Path("/run/corral-shell-test").mkdir(exist_ok=True)
    monkeypatch.chdir(ROOT)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_first_screen_has_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("---", 1)[0]
    commands = re.findall(r"^bash dev\.sh (\w+)", head, re.M)
    assert commands == ["demo", "test"]
    ci = (ROOT / ".ci/run").read_text()
    assert "bash dev.sh test" in ci
    assert os.access(ROOT / "dev.sh", os.R_OK)


def test_readme_consumer_table_names_tests_that_exist() -> None:
    """Every row of the consumer table is a test in the suite."""
    text = (ROOT / "README.md").read_text()
    table = text.split("### Every target, handed to its consumer", 1)[1].split("\n\n", 3)[2]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 9
    for row in rows:
        refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`", row)
        assert refs, row
        module = None
        for path, name, more in refs:
            module = path or module
            assert module and (ROOT / module).exists(), row
            for test in (name, more):
                if test:
                    assert f"def {test}(" in (ROOT / module).read_text(), (module, test)
