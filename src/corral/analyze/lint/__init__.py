"""`corral lint`: rules in the style of ruff, one module per rule.

Each rule module under ``rules/`` defines ``CODE``, ``NAME`` (a slug),
``SEVERITY`` ("error", "warning" or "info"), a docstring with the sections
*What it does*, *Why is this bad?*, *Example*, *Use instead*, and
``check(view) -> Iterator[Finding]``. ``RULES`` lists them; the CLI, the
generated docs/lint-rules.md and the tests all read it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from ...errors import Diagnostic, Span
from ..view import View

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Finding:
    span: Span
    message: str
    fix: str = ""


def _load() -> dict[str, ModuleType]:
    from . import rules

    mods = [importlib.import_module(f"{rules.__name__}.{m.name}") for m in pkgutil.iter_modules(rules.__path__) if m.name.startswith("cr")]
    return {m.CODE: m for m in sorted(mods, key=lambda m: m.CODE)}


RULES: dict[str, ModuleType] = _load()


def lint_view(view: View) -> Iterator[Diagnostic]:
    for code, rule in RULES.items():
        for f in rule.check(view):
            yield Diagnostic(f.span, code, f.message, f.fix, rule.SEVERITY)


def explain(code: str) -> str:
    rule = RULES[code.upper()]
    return f"{rule.CODE} ({rule.NAME}) [{rule.SEVERITY}]\n\n{(rule.__doc__ or '').strip()}\n"


def rules_markdown() -> str:
    lines = ["# Lint rules", "", "Generated from `src/corral/analyze/lint/rules/` by `corral lint --markdown`; do not edit.", ""]
    lines += ["| code | name | severity |", "|---|---|---|"]
    lines += [f"| [{c}](#{c.lower()}) | {r.NAME} | {r.SEVERITY} |" for c, r in RULES.items()]
    for code, rule in RULES.items():
        lines += ["", f"## {code}", "", f"`{rule.NAME}` · {rule.SEVERITY}", "", (rule.__doc__ or "").strip()]
    return "\n".join(lines) + "\n"
