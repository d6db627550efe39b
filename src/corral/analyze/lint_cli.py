"""`corral lint FILE...`: findings as `file:line:col: CODE message`, or JSON."""

from __future__ import annotations

import json
import sys

from .._base import CorralError
from .lint import RULES, SEVERITIES, explain, lint_view, rules_markdown
from .view import views_of


def main(files: list[str], as_json: bool, severity: str, code: str | None, markdown: bool, search: tuple[str, ...], included: bool = False) -> int:
    if markdown:
        sys.stdout.write(rules_markdown())
        return 0
    if code:
        if code.upper() not in RULES:
            raise CorralError(f"unknown rule {code!r}", code="A001", hint=f"rules are {', '.join(RULES)}")
        sys.stdout.write(explain(code))
        return 0
    if not files:
        raise CorralError("name at least one policy (.toml) or AppArmor profile", code="A002", hint="corral lint examples/agent-http2.toml")
    findings = []
    for path in files:
        try:
            views, diagnostics = views_of(path, search)
        except OSError as exc:
            raise CorralError(f"cannot read: {exc.strerror}", code="F001", hint="check the path and its permissions", span=path) from None
        findings += diagnostics
        for view in views:
            # rules that live in included abstractions are their authors' to fix
            findings += [d for d in lint_view(view) if included or d.span.file == path]
    findings.sort(key=lambda d: (d.span.file, d.span.line, d.span.col, d.code))
    threshold = SEVERITIES.index(severity)
    if as_json:
        print(json.dumps([{"file": d.span.file, "line": d.span.line, "col": d.span.col, "code": d.code, "severity": d.severity, "message": d.message, "fix": d.hint} for d in findings], indent=2))
    else:
        for d in findings:
            print(f"{d.span}: {d.code} {d.message}" + (f" [{d.severity}]" if d.severity != "error" else ""))
        counts = {s: sum(1 for d in findings if d.severity == s) for s in SEVERITIES}
        print(f"{len(findings)} finding(s): " + ", ".join(f"{n} {s}" for s, n in reversed(counts.items()) if n) if findings else "no findings", file=sys.stderr)
    return 1 if any(SEVERITIES.index(d.severity) >= threshold for d in findings if d.severity in SEVERITIES) else 0
