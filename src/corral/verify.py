"""``corral verify POLICY``: compile every backend, then run the policy's
own [[Test]] entries under real enforcement and compare with expectations.

AppArmor profiles are compiled by the real ``apparmor_parser`` (offline,
``-Q -S``); the tests run under ``corral run``'s enforcement (Landlock,
seccomp, capabilities), which is what this machine can enforce.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field

from ._tools import corral_command, find, run_apparmor_parser
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

    @property
    def untestable(self) -> bool:
        """Plain permissions already deny it: the row says nothing about the policy."""
        return self.got == UNTESTABLE


@dataclass
class Result:
    policy: str
    compile: list[Row] = field(default_factory=list)
    tests: list[Row] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(not r.ok and not r.untestable for r in self.compile + self.tests)

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.compile + self.tests)

    @property
    def untestable(self) -> int:
        return sum(r.untestable for r in self.tests)

    def to_json(self) -> str:
        def rows(rs: list[Row]) -> list[dict[str, object]]:
            return [{**asdict(r), "ok": r.ok} for r in rs]

        return json.dumps({"policy": self.policy, "compile": rows(self.compile), "tests": rows(self.tests), "passed": self.passed, "failed": self.failed, "untestable": self.untestable}, indent=2)

    def table(self) -> str:
        lines = [f"corral verify {self.policy}"]
        width = max((len(r.what) for r in self.compile + self.tests), default=10)
        lines.append(f"  {'':4}  {'check':{width}}  {'expect':6}  {'got':6}  detail")
        for r in self.compile + self.tests:
            status = "PASS" if r.ok else "N/A " if r.untestable else "FAIL"
            lines.append(f"  {status}  {r.what:{width}}  {r.expect:6}  {r.got:6}  {r.detail}" + (f"  [{r.span}]" if not r.ok and r.span else ""))
        untestable = f", {self.untestable} not testable as this user (denied without the policy too)" if self.untestable else ""
        lines.append(f"{self.passed} passed, {self.failed} failed{untestable}")
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
        proc = run_apparmor_parser(["-Q", "-S", fh.name])
    errors = [l for l in proc.stderr.splitlines() if "Cache read/write disabled" not in l]
    rows.append(Row("compile apparmor", "ok", "ok" if proc.returncode == 0 else "error", "apparmor_parser -Q -S accepted it" if proc.returncode == 0 else "; ".join(errors)[:300]))
    return rows


def _run_command(policy: str, test: TestCase) -> Row:
    cmd = [*corral_command(), "run", "--quiet", policy, "--", *test.run]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return Row(test.describe(), test.expect, "error", "timed out after 60 s", str(test.span))
    except OSError as exc:
        return Row(test.describe(), test.expect, "error", f"cannot start corral run: {exc.strerror}", str(test.span))
    got = "allow" if proc.returncode == 0 else "deny"
    detail = f"exit {proc.returncode}" + (f": {_reason(proc.stderr)[:200]}" if proc.returncode and proc.stderr.strip() else "")
    return Row(test.describe(), test.expect, got, detail, str(test.span))


#: A probe's ``got`` when plain permissions deny it without the policy.
UNTESTABLE = "n/a"


def _reason(stderr: str) -> str:
    """The line of a refusal that says why: corral's error line (not its
    hint), else the program's last line."""
    lines = [line.strip() for line in stderr.strip().splitlines()]
    return next((line.split(": ", 1)[1] for line in lines if ": error[" in line), lines[-1])


def verify(path: str) -> Result:
    """Compile and test the policy at ``path``; the result says what failed."""
    from .sandbox import plan as plans
    from .sandbox.apply import SandboxError
    from .sandbox.probes import FILE_PROBES, run_probe, unconfined_denial

    policy = load_policy(path)
    ir = lower(policy)
    result = Result(path, _compile_rows(ir))
    plan = plans.build(ir, [f for f in policy.sources if not f.startswith("<")])
    for test in policy.tests:
        if test.run:
            result.tests.append(_run_command(path, test))
            continue
        try:
            denied = unconfined_denial(plan, test.probe, dict(test.params))
            if denied is not None:
                by = "file permissions" if test.probe in FILE_PROBES else "this user's privileges"
                detail = f"denied by {by}, not by the policy ({denied} unconfined too, as uid {os.geteuid()})"
                result.tests.append(Row(test.describe(), test.expect, UNTESTABLE, detail, str(test.span)))
                continue
            outcome = run_probe(plan, test.probe, dict(test.params))
        except SandboxError as exc:
            result.tests.append(Row(test.describe(), test.expect, "error", str(exc), str(test.span)))
            continue
        result.tests.append(Row(test.describe(), test.expect, outcome.verdict, outcome.detail, str(test.span)))
    return result
