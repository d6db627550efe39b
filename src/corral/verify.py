"""``corral verify POLICY``: compile every backend, then run the policy's
own [[Test]] entries under real enforcement and compare with expectations.

AppArmor profiles are compiled by the real ``apparmor_parser`` (offline,
``-Q -S``); the tests run under ``corral run``'s enforcement (Landlock,
seccomp, capabilities), which is what this machine can enforce.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field

from ._tools import corral_command, find
from .backends import BACKENDS
from .compile import compile_ir
from .lower import lower
from .policy import load_policy
from .policy.model import TestCase


@dataclass
class Row:
    what: str
    expect: str
    got: str
    detail: str
    span: str = ""

    @property
    def ok(self) -> bool:
        return self.expect == self.got


@dataclass
class Result:
    policy: str
    compile: list[Row] = field(default_factory=list)
    tests: list[Row] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.compile + self.tests)

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.compile + self.tests)

    def to_json(self) -> str:
        def rows(rs: list[Row]) -> list[dict[str, object]]:
            return [{**asdict(r), "ok": r.ok} for r in rs]

        return json.dumps({"policy": self.policy, "compile": rows(self.compile), "tests": rows(self.tests), "passed": self.passed, "failed": self.failed}, indent=2)

    def table(self) -> str:
        lines = [f"corral verify {self.policy}"]
        width = max((len(r.what) for r in self.compile + self.tests), default=10)
        lines.append(f"  {'':4}  {'check':{width}}  {'expect':6}  {'got':6}  detail")
        for r in self.compile + self.tests:
            lines.append(f"  {'PASS' if r.ok else 'FAIL'}  {r.what:{width}}  {r.expect:6}  {r.got:6}  {r.detail}" + (f"  [{r.span}]" if not r.ok and r.span else ""))
        lines.append(f"{self.passed} passed, {self.failed} failed")
        return "\n".join(lines)


def _compile_rows(ir: object) -> list[Row]:
    result = compile_ir(ir, list(BACKENDS), allow_unenforced=True)  # type: ignore[arg-type]
    rows = [Row(f"compile {name}", "ok", "ok", f"{len(out.content)} bytes") for name, out in result.outputs.items() if name != "apparmor"]
    parser = find("apparmor_parser")
    if parser is None:
        rows.append(Row("compile apparmor", "ok", "error", "apparmor_parser is not installed (Debian package apparmor)"))
        return rows
    with tempfile.NamedTemporaryFile(suffix=".apparmor") as fh:
        fh.write(result.outputs["apparmor"].content)
        fh.flush()
        proc = subprocess.run([parser, "-Q", "-S", fh.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors = [l for l in proc.stderr.splitlines() if "Cache read/write disabled" not in l]
    rows.append(Row("compile apparmor", "ok", "ok" if proc.returncode == 0 else "error", "apparmor_parser -Q -S accepted it" if proc.returncode == 0 else "; ".join(errors)[:300]))
    return rows


def _run_command(policy: str, test: TestCase) -> Row:
    cmd = [*corral_command(), "run", "--quiet", policy, "--", *test.run]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return Row(test.describe(), test.expect, "error", "timed out after 60 s", str(test.span))
    got = "allow" if proc.returncode == 0 else "deny"
    detail = f"exit {proc.returncode}" + (f": {proc.stderr.strip().splitlines()[-1][:120]}" if proc.returncode and proc.stderr.strip() else "")
    return Row(test.describe(), test.expect, got, detail, str(test.span))


def verify(path: str) -> Result:
    """Compile and test the policy at ``path``; the result says what failed."""
    from .sandbox import plan as plans
    from .sandbox.apply import SandboxError
    from .sandbox.probes import run_probe

    policy = load_policy(path)
    ir = lower(policy)
    result = Result(path, _compile_rows(ir))
    plan = plans.build(ir, [f for f in policy.sources if not f.startswith("<")])
    for test in policy.tests:
        if test.run:
            result.tests.append(_run_command(path, test))
            continue
        try:
            outcome = run_probe(plan, test.probe, dict(test.params))
        except SandboxError as exc:
            result.tests.append(Row(test.describe(), test.expect, "error", str(exc), str(test.span)))
            continue
        result.tests.append(Row(test.describe(), test.expect, outcome.verdict, outcome.detail, str(test.span)))
    return result
