"""``corral learn LOG... [--into POLICY] [--dry-run]``.

Additions are merged into the policy's text with tomlkit, which keeps the
file's comments and layout: only list items are added, nothing is removed.
The change is printed as a unified diff and written atomically.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from .._base import CorralError
from .auditlog import read_log_files
from .events import Collected
from .synth import Additions, render, synthesize


def merge_text(text: str, additions: Additions) -> str:
    """The policy text with every addition merged in (comments kept)."""
    import tomlkit

    doc = tomlkit.parse(text)
    for (section, key), lines in additions.keys.items():
        if not lines:
            continue
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc.add(section, table)
        array = table.get(key)
        if array is None:
            array = tomlkit.array()
            array.multiline(True)
            table.add(key, array)
        present = {str(v) for v in array}
        for line in lines:
            if line.value not in present:
                array.add_line(line.value, comment=line.why)
                present.add(line.value)
    return tomlkit.dumps(doc)


def main(logs: list[str], into: str | None, dry_run: bool) -> int:
    collected = Collected()
    try:
        read_log_files(logs, collected, progress=sys.stderr.isatty())
    except OSError as exc:
        raise CorralError(f"{exc.filename}: error: cannot read log: {exc.strerror}") from None
    summary = f"corral learn: {collected.lines:,} lines, {len(collected.events):,} distinct events"
    if collected.unknown:
        summary += f", {collected.unknown:,} lines not understood, e.g.:\n" + "\n".join(f"    {s}" for s in collected.samples)
    print(summary, file=sys.stderr)
    if into is None:
        additions = synthesize(collected)
        sys.stdout.write(render(additions, name="learned", description="Learned from audit logs", header=[f"Learned by `corral learn` from {', '.join(logs)}"]))
        return 0
    from ..lower import lower
    from ..policy import load_policy, load_policy_text

    base = lower(load_policy(into))
    additions = synthesize(collected, base)
    old = Path(into).read_text(encoding="utf-8")
    new = merge_text(old, additions)
    if new == old:
        print(f"corral learn: {into} already allows everything in the logs", file=sys.stderr)
        return 0
    load_policy_text(new, into, base_dir=Path(into).parent)  # the merged policy must still be valid
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), into, f"{into} (learned)"))
    if dry_run:
        return 0
    from ..fsutil import write_atomic

    write_atomic(Path(into), new.encode(), force=True)
    print(f"corral learn: updated {into}", file=sys.stderr)
    return 0
