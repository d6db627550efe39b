"""``corral learn LOG... [--into POLICY] [--dry-run]``.

Additions are merged into the policy's text with tomlkit, which keeps the
file's comments and layout: only list items are added, nothing is removed.
The change is printed as a unified diff and written atomically.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from .._base import CorralError
from ..escape import Unrepresentable, printable, toml_string, visible
from .auditlog import read_log_files
from .events import Call, Collected, Event, Ioctl, Port, SockOpt, Syscall
from .synth import Additions, render, synthesize


def _indent(text: str) -> str:
    """The indentation the file gives list items (two spaces if none)."""
    m = re.search(r'^([ \t]+)["\']', text, re.MULTILINE)
    return m.group(1) if m else "  "


def merge_text(text: str, additions: Additions) -> str:
    """The policy text with every addition merged in (comments kept)."""
    import tomlkit

    doc = tomlkit.parse(text)
    indent = _indent(text)
    gap = m.group(1) if (m := re.search(r',( +)#', text)) else "  "  # the file's space before a comment
    added: list[str] = []
    for (section, key), lines in additions.keys.items():
        if not lines:
            continue
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc.add(section, table)
        found = table.get(key)
        fresh = found is None
        array = tomlkit.array() if found is None else found
        if fresh:
            table.add(key, array)
        present = {str(v) for v in array}
        for line in lines:
            if line.value not in present and one_text(line.value):
                array.add_line(line.value, comment=visible(line.why), indent=indent)  # an event's field may hold a newline
                present.add(line.value)
                added.append(f"{tomlkit.string(line.value).as_string()}, # {visible(line.why)}")
        if fresh:
            array.add_line(indent="")  # the closing bracket on its own line, as the file's lists have it
    out = tomlkit.dumps(doc)
    for entry in added:  # tomlkit puts one space before a comment; the file may use more
        out = out.replace(entry, entry.replace(", # ", f",{gap}# ", 1), 1)
    return out


def one_text(value: str) -> bool:
    """False for a value TOML cannot hold (an undecodable byte): left out
    here, and ``render`` says so in the printed additions."""
    try:
        toml_string(value)
    except Unrepresentable:
        return False
    return True


def _select(collected: Collected, profile: str | None) -> list[tuple[str, Collected]]:
    """(profile, its events) to learn from: one service's needs never land
    in another's policy. Events of no profile (seccomp, strace) go with the
    only profile when there is one, and are left out (with a note) when
    there are several."""
    names = collected.profile_names()
    if profile is not None:
        if profile not in names:
            known = ", ".join(names) or "none"
            raise CorralError(f"no events of profile {profile!r} in the logs (profiles seen: {known})", code="A008", hint="--profile takes a profile named in the logs")
        return [(profile, collected.only(profile, unattributed=len(names) == 1))]
    if len(names) <= 1:
        return [(names[0] if names else "", collected)]
    loose = sum(1 for e in collected.events if e not in collected.profiles)
    if loose:
        print(f"corral learn: {loose} event(s) carry no profile (seccomp, strace) and the logs name several: left out", file=sys.stderr)
    return [(name, collected.only(name, unattributed=False)) for name in names]


#: Said when every event came from AppArmor: what its logs cannot teach.
PATHS_ONLY_NOTE = (
    "these are AppArmor events alone: they carry no system calls and no ports, so the seccomp filter and the port rules "
    "learn nothing from them (corral run, seccomp, systemd and docker may still deny what the program needs); "
    "learn those with `corral trace` or `corral run --log-to`"
)


def _paths_only(events: Iterable[Event]) -> bool:
    """Whether the events are of the kinds AppArmor logs (files, socket
    families, capabilities) and none of those only a trace, a seccomp log or
    a run record carries (system calls, ports, socket options, ioctls)."""
    kinds = {type(e) for e in events}
    return bool(kinds) and not kinds & {Syscall, Call, Port, SockOpt, Ioctl}


def origin_report(collected: Collected) -> list[str]:
    """What the learner says about who wrote the events: lines in no shape
    the kernel writes (forged, not learned), and events a text format
    carried (it cannot prove the kernel wrote them)."""
    out = []
    if collected.forged:
        out.append(
            f"corral learn: {collected.forged:,} line(s) carry an event's text but not in a shape the kernel or auditd writes "
            "(another program's log line, as `logger` writes): not learned, e.g.:"
        )
        out += [f"    {printable(s)}" for s in collected.forged_samples]
    if collected.text_events:
        out.append(
            f"corral learn: warning: {collected.text_events:,} event(s) came from a text log (syslog, kern.log, journalctl's short output, dmesg), "
            "which cannot prove the kernel wrote them: `logger -t kernel` writes the same line. Review them, or learn from auditd's log "
            "(/var/log/audit/audit.log) or `journalctl -o json` / `-o export`, where _TRANSPORT says who wrote each entry"
        )
    return out


def main(logs: list[str], into: str | None, dry_run: bool, profile: str | None = None) -> int:
    collected = Collected()
    try:
        read_log_files(logs, collected, progress=sys.stderr.isatty())
    except OSError as exc:
        raise CorralError(f"cannot read log: {exc.strerror}", code="F001", hint="check the path and its permissions", span=exc.filename) from None
    summary = f"corral learn: {collected.lines:,} lines, {len(collected.events):,} distinct events"
    if collected.unknown:
        summary += f", {collected.unknown:,} lines not understood, e.g.:\n" + "\n".join(f"    {printable(s)}" for s in collected.samples)
    print(summary, file=sys.stderr)
    for line in origin_report(collected):
        print(line, file=sys.stderr)
    chosen = _select(collected, profile)
    if _paths_only(e for _, part in chosen for e in part.events):
        print(f"corral learn: note: {PATHS_ONLY_NOTE}", file=sys.stderr)
    if into is None:
        for name, events in chosen:
            additions = synthesize(events)
            policy_name = re.sub(r"[^A-Za-z0-9._-]", "-", name.strip("/")) or "learned"
            if len(chosen) > 1:
                sys.stdout.write(f"# ---- profile {json.dumps(name)} ----\n")
            sys.stdout.write(render(additions, name=policy_name, description="Learned from audit logs", header=[f"Learned by `corral learn` from {', '.join(logs)}"]))
        return 0
    if len(chosen) > 1:
        names = ", ".join(n for n, _ in chosen)
        raise CorralError(
            f"the logs hold events of several profiles ({names}); merging them would put one's needs into another's policy",
            code="A009",
            hint="pick one with --profile NAME, or leave out --into to print one policy per profile",
        )
    events = chosen[0][1]
    from ..lower import lower
    from ..policy import load_policy, load_policy_text

    target = Path(into)
    if not target.exists():
        additions = synthesize(events)
        name = re.sub(r"[^A-Za-z0-9._-]", "-", target.stem) or "learned"
        new = render(additions, name=name, description="Learned from logs", header=[f"Learned by `corral learn` from {', '.join(logs)}"])
        load_policy_text(new, into, base_dir=target.parent)
        for note in dict.fromkeys(additions.notes):
            print(f"corral learn: note: {printable(note)}", file=sys.stderr)
        sys.stdout.write(new if dry_run else "")
        if dry_run:
            return 0
        from ..fsutil import write_atomic

        write_atomic(target, new.encode())
        print(f"corral learn: created {into}", file=sys.stderr)
        return 0
    base = lower(load_policy(into))
    additions = synthesize(events, base)
    old = target.read_text(encoding="utf-8")
    new = merge_text(old, additions)
    for note in dict.fromkeys(additions.notes):
        print(f"corral learn: note: {printable(note)}", file=sys.stderr)
    if new == old:
        print(f"corral learn: {into} already allows everything in the logs", file=sys.stderr)
        return 0
    load_policy_text(new, into, base_dir=target.parent)  # the merged policy must still be valid
    sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), into, f"{into} (learned)"))
    if dry_run:
        return 0
    from ..fsutil import write_atomic

    write_atomic(target, new.encode(), force=True)
    print(f"corral learn: updated {into}", file=sys.stderr)
    return 0
