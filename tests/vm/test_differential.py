"""Differential enforcement, as a test: the matrix of differential.py
(policy x operation x backend x intent) under `corral run` on the host and
under the compiled AppArmor profile in the VM. Every verdict equals the
policy's intent, or the coverage report of that backend declares the rule
approximate or not enforced: zero undeclared disagreements. PENDING would
list one not fixed yet, naming who fixes it, checked to still be a
disagreement (so the list cannot outlive the bug); it is empty."""

from __future__ import annotations

import pytest

from .differential import CASES, Row, summary, table

#: (policy, operation, backend) -> why it is not fixed here yet.
PENDING: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def rows(vm_ready: None) -> list[Row]:
    result, raw = table()
    print(summary(result))
    return result


def test_every_case_has_twenty_operations() -> None:
    assert all(len(c.ops) >= 20 for c in CASES if c.name != "proposal"), [(c.name, len(c.ops)) for c in CASES]
    assert {"agent-http2", "nodejs-web", "proposal"} <= {c.name for c in CASES}


def test_no_verdict_is_an_error(rows: list[Row]) -> None:
    # a failure that is not a sandbox's (ENOENT, EROFS...) is a broken layout, not a verdict
    broken = [(r.policy, r.op, b, r.answers[b]) for r in rows for b, v in r.verdicts.items()
              if v.startswith("error") and not (r.answers[b] == "missing" and r.declared.get(b))]
    assert not broken


def test_both_backends_enforce_something(rows: list[Row]) -> None:
    for backend in ("run", "apparmor"):
        assert sum(1 for r in rows if r.verdicts[backend] == "deny" == r.intent) > 50, backend
        assert sum(1 for r in rows if r.verdicts[backend] == "allow" == r.intent) > 30, backend


def test_zero_undeclared_disagreements(rows: list[Row]) -> None:
    undeclared = [(r.policy, r.op, b, r.intent, r.verdicts[b]) for r in rows for b in r.undeclared() if (r.policy, r.op, b) not in PENDING]
    assert not undeclared, summary(rows)


def test_pending_disagreements_are_still_real(rows: list[Row]) -> None:
    by_key = {(r.policy, r.op): r for r in rows}
    fixed = [k for k in PENDING if by_key[k[:2]].verdicts[k[2]] == by_key[k[:2]].intent or by_key[k[:2]].declared.get(k[2])]
    assert not fixed, f"no longer disagreements: remove them from PENDING: {fixed}"
