"""Compile an IR to the selected targets and judge their joint coverage.

A restriction the policy states must be enforced by at least one selected
target; if none enforces it, compiling fails (``UnenforcedError``) and says
which other target would, unless the caller accepts the gap explicitly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .backends import BACKENDS, Coverage, Level, Output, with_needs
from .errors import UnenforcedError
from .ir import IR, AlpnRule, AuditRule, CapabilityRule, FileRule, HostRule, PeerDenyRule, PortRule, Rule, SocketOptionRule, SocketRule, kind_of

@dataclass
class RuleCoverage:
    rule: Rule
    selected: dict[str, Coverage] = field(default_factory=dict)
    others: dict[str, Coverage] = field(default_factory=dict)

    @property
    def best(self) -> Level:
        return max((c.level for c in self.selected.values()), default=Level.NONE)

    def describe(self) -> str:
        r = self.rule
        if isinstance(r, FileRule):
            return f"{'deny ' if r.deny else ''}{r.path}"
        if isinstance(r, AuditRule):
            return f"log writes to {r.path}"
        if isinstance(r, SocketRule):
            return f"socket {r.family} {r.type}"
        if isinstance(r, PortRule):
            peer = f"{r.address} " if r.address else ""
            return f"{r.protocol} {r.direction} {peer}{r.port or '*'}"
        if isinstance(r, HostRule):
            return f"{'http' if r.plain_http else r.protocol} connect {r.host} {r.port or '*'}"
        if isinstance(r, PeerDenyRule):
            return f"deny {r.protocol} connect {r.host or r.address} {r.port or '*'}"
        if isinstance(r, AlpnRule):
            return f"TLS offers ALPN {', '.join(r.protocols)} and no other" if r.only else f"TLS offers ALPN {' or '.join(r.protocols)}"
        if isinstance(r, CapabilityRule):
            return f"{'deny ' if r.deny else ''}capability {r.name}"
        if isinstance(r, SocketOptionRule):
            return f"socket option {r.name}"
        return f"system call {r.name}"


@dataclass
class CompileResult:
    ir: IR
    targets: list[str]
    outputs: dict[str, Output]
    rules: list[RuleCoverage]

    @property
    def unenforced(self) -> list[RuleCoverage]:
        return [r for r in self.rules if r.best == Level.NONE]

    def summary(self, verbose: bool = False) -> str:
        """Per kind of rule, how each selected target enforces it."""
        lines = [f"coverage by {', '.join(self.targets)}:"]
        by_kind: dict[str, list[RuleCoverage]] = defaultdict(list)
        for rc in self.rules:
            by_kind[kind_of(rc.rule).noun].append(rc)
        for kind, rcs in by_kind.items():
            parts = []
            for target in self.targets:
                counts: defaultdict[Level, int] = defaultdict(int)
                for rc in rcs:
                    counts[rc.selected[target].level] += 1
                if counts[Level.EXACT] or counts[Level.APPROX]:
                    words = [f"{n} {lvl.name.lower()}" for lvl, n in sorted(counts.items(), reverse=True) if n and lvl != Level.NONE]
                    parts.append(f"{target} {', '.join(words)}")
            lines.append(f"  {kind:15} {len(rcs):4} rules: {'; '.join(parts) or 'NOT ENFORCED'}")
        approx = [rc for rc in self.rules if rc.best == Level.APPROX]
        shown = approx if verbose else approx[:5]
        if approx:
            lines.append("  approximate (enforced, but wider than the policy):")
            for rc in shown:
                notes = "; ".join(f"{t}: {c.note}" for t, c in rc.selected.items() if c.level == Level.APPROX and c.note)
                lines.append(f"    {rc.describe()} [{rc.rule.span}] {notes}")
            if len(approx) > len(shown):
                lines.append(f"    ... and {len(approx) - len(shown)} more (--verbose lists them)")
        gaps = self.unenforced
        lines.append(f"  not enforced by any selected target: {len(gaps) or 'none'}")
        if verbose:
            lines += [f"    {rc.describe()} [{rc.rule.span}]{_would(rc)}" for rc in gaps]
        else:
            lines += ["  " + line for line in gap_groups(self)]
        return "\n".join(lines)

    def report(self) -> dict[str, object]:
        """The coverage report as data, for ``--json``."""
        return {
            "policy": self.ir.source,
            "name": self.ir.name,
            "targets": self.targets,
            "unenforced": len(self.unenforced),
            "rules": [
                {
                    "kind": kind_of(rc.rule).noun,
                    "rule": rc.describe(),
                    "span": str(rc.rule.span),
                    "origin": rc.rule.origin,
                    "best": rc.best.name.lower(),
                    "selected": {t: {"level": c.level.name.lower(), "note": c.note} for t, c in rc.selected.items()},
                    "others": sorted(t for t, c in rc.others.items() if c.level > Level.NONE),
                }
                for rc in self.rules
            ],
        }


def _would(rc: RuleCoverage) -> str:
    others = [t for t, c in rc.others.items() if c.level > Level.NONE]
    return f" (would be enforced by {', '.join(others)})" if others else " (no backend can enforce it)"


def gap_groups(result: CompileResult) -> list[str]:
    """The gaps grouped by kind and by which targets would close them, one
    line per group with up to three examples."""
    groups: dict[tuple[str, str], list[RuleCoverage]] = defaultdict(list)
    for rc in result.unenforced:
        groups[(kind_of(rc.rule).noun, _would(rc))].append(rc)
    lines = []
    for (kind, would), rcs in groups.items():
        examples = ", ".join(f"{rc.describe()} [{rc.rule.span}]" for rc in rcs[:3])
        more = f", ... ({len(rcs) - 3} more)" if len(rcs) > 3 else ""
        lines.append(f"  {len(rcs)} {kind}{would}: {examples}{more}")
    return lines


def gap_message(result: CompileResult) -> str:
    count = len(result.unenforced)
    head = (
        f"{count} restriction{'s' if count > 1 else ''} of the policy would be "
        f"enforced by none of the selected targets ({', '.join(result.targets)}):"
    )
    return "\n".join([head, *gap_groups(result)])


def coverage_of(ir: IR, targets: list[str], built: dict[str, Output] | None = None) -> list[RuleCoverage]:
    """Every rule with how each backend covers it, split into the selected
    targets and the others. Artifacts built on the way land in ``built``."""
    table: dict[tuple[str, Rule], RuleCoverage] = {}
    for rule in ir.rules():
        table[(type(rule).__name__, rule)] = RuleCoverage(rule)
    for name, target in BACKENDS.items():
        coverage, output = target.coverage(ir)
        if output is not None and built is not None:
            built[name] = output
        for cov in coverage:
            rc = table[(type(cov.rule).__name__, cov.rule)]
            (rc.selected if name in targets else rc.others)[name] = cov
    return list(table.values())


def compile_ir(ir: IR, targets: list[str], *, allow_unenforced: bool = False) -> CompileResult:
    """Emit every selected target and the targets their consumers need with
    them (``Target.needs``); fail if a rule is left unenforced."""
    targets = with_needs(targets)
    built: dict[str, Output] = {}
    rules = coverage_of(ir, targets, built)
    result = CompileResult(ir, targets, {}, rules)
    if result.unenforced and not allow_unenforced:
        raise UnenforcedError(
            gap_message(result),
            hint="add the targets named above with -t, or pass --allow-unenforced to accept the gap",
            span=ir.source,
        )
    for name in targets:
        result.outputs[name] = built.get(name) or BACKENDS[name].emit(ir)
    return result
