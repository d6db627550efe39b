"""Reading one flag definition: a catalogue table or a policy's ``[[Flag]]``.

Both go through the same validator, so a user-defined flag is exactly as
expressive (and as strictly checked) as a built-in one.

Args grammar (TOML)::

    [FLAG.Args]
    SYSCALL = [ ALTERNATIVE, ... ]        # allowed if any alternative holds
    ALTERNATIVE = [ CMP, ... ]            # all comparisons must hold
    CMP = { arg = 0..5, op = OP, value = INT [, mask = INT] }
        | { arg = 0..5, in = [INT, ...] } # shorthand: one alternative per value
"""

from __future__ import annotations

import itertools
import math
from typing import Any, TypeGuard

from . import items
from .locate import KeyPath
from .model import ARG_OPS, CATEGORIES, Alternative, ArgCmp, CmpOp, FlagDef
from .reader import Reader
from .schema import FLAG_KEYS, FLAG_LIST_KEYS
from .suggest import dotted

#: Alternatives one system call's Args may expand to ('in' lists multiply):
#: each is a rule in the filter, and seccomp filters are capped at 4096
#: instructions.
MAX_ALTERNATIVES = 256

_KIND = {k.name: k for k in FLAG_KEYS}


def parse_flag_table(
    reader: Reader, path: KeyPath, table: dict[str, Any], *, name: str, category: str | None, builtin: bool
) -> FlagDef | None:
    """Validate one flag's table; return it, or None after reporting errors."""
    before = len(reader.errors.diagnostics)
    allowed = tuple(k for k in FLAG_KEYS if not (builtin and k.name in ("Name", "Category")))
    reader.check_keys(path, table, allowed, f"flag '{name}'")
    values = {k: v for k, v in table.items() if k in _KIND and reader.typed(path + (k,), v, _KIND[k])}

    description = values.get("Description", "")
    if not description:
        reader.error(path, "E017", f"flag '{name}' has no Description", "add Description = \"what the flag lets a program do, in plain words\"", key=True)
    else:
        reader.item_ok(path + ("Description",), description, items.TEXT)
    if "Category" in values:
        category = values["Category"]
        if category not in CATEGORIES:
            reader.error(path + ("Category",), "E012", f"unknown category '{category}'", f"one of: {', '.join(CATEGORIES)}")

    syscalls = tuple(i.value for i in reader.items(path + ("Syscalls",), values.get("Syscalls", []), items.SYSCALL))
    args = _parse_args(reader, path + ("Args",), values.get("Args", {}))
    errno = _parse_errno(reader, path + ("Errno",), values.get("Errno", {}))
    lists = tuple(
        (key, tuple(reader.items(path + (key,), values[key], kind))) for key, kind in FLAG_LIST_KEYS.items() if key in values
    )
    if len(reader.errors.diagnostics) > before:
        return None
    return FlagDef(
        name=name,
        description=description,
        category=category,
        span=reader.span(path, key=True),
        syscalls=syscalls,
        args=args,
        errno=errno,
        lists=lists,
        notes=values.get("Notes", ""),
        builtin=builtin,
    )


def _parse_args(reader: Reader, path: KeyPath, table: dict[str, Any]) -> tuple[tuple[str, tuple[Alternative, ...]], ...]:
    out: list[tuple[str, tuple[Alternative, ...]]] = []
    for syscall, alternatives in table.items():
        spath = path + (syscall,)
        if not reader.item_ok(spath, syscall, items.SYSCALL):
            continue
        if not isinstance(alternatives, list) or not all(isinstance(a, list) for a in alternatives):
            reader.error(spath, "E018", f"{dotted(spath)} must be a list of alternatives, each a list of comparisons", "for example: openat = [[{ arg = 2, op = \"masked_eq\", mask = 0x243, value = 0 }]]")
            continue
        expanded: list[Alternative] = []
        for ai, alt in enumerate(alternatives):
            choices: list[list[ArgCmp]] = []
            seen: set[int] = set()
            for ci, cmp in enumerate(alt):
                parsed = _parse_cmp(reader, spath + (ai, ci), cmp)
                if parsed is None:
                    break
                if parsed[0].arg in seen:  # libseccomp refuses it (EINVAL) when the filter is built
                    reader.error(spath + (ai, ci), "E018", f"{dotted(spath + (ai, ci))}: a second comparison on argument {parsed[0].arg} in one alternative", "libseccomp takes one comparison per argument in a rule: use masked_eq, or write separate alternatives")
                    break
                seen.add(parsed[0].arg)
                choices.append(parsed)
            else:
                count = math.prod(len(c) for c in choices) + len(expanded)
                if count > MAX_ALTERNATIVES:
                    reader.error(spath + (ai,), "E018", f"{dotted(spath)}: {count} alternatives after expanding 'in' lists (the limit is {MAX_ALTERNATIVES})", "allow fewer values, or compare with masked_eq, lt or gt")
                    break
                expanded.extend(tuple(combo) for combo in itertools.product(*choices))
        out.append((syscall, tuple(expanded)))
    return tuple(out)


def _u64(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def _parse_cmp(reader: Reader, path: KeyPath, cmp: Any) -> list[ArgCmp] | None:
    """One comparison; ``in`` yields one ArgCmp per value (alternatives)."""
    hint = "a comparison is { arg = 0..5, op = \"eq\", value = N } or { arg = 0..5, in = [N, ...] }"
    if not isinstance(cmp, dict):
        reader.error(path, "E018", f"{dotted(path)} must be an inline table", hint)
        return None
    arg = cmp.get("arg")
    if not isinstance(arg, int) or isinstance(arg, bool) or not 0 <= arg <= 5:
        reader.error(path, "E018", f"{dotted(path)}: 'arg' must be an argument index from 0 to 5", hint)
        return None
    unknown = set(cmp) - {"arg", "op", "value", "mask", "in"}
    if unknown:
        reader.error(path, "E002", f"{dotted(path)}: unknown key '{sorted(unknown)[0]}' in a comparison", hint)
        return None
    if "in" in cmp:
        values = cmp["in"]
        if not isinstance(values, list) or not values or not all(_u64(v) for v in values):
            reader.error(path, "E018", f"{dotted(path)}: 'in' must be a non-empty list of integers from 0 to 2**64-1", hint)
            return None
        return [ArgCmp(arg, CmpOp.EQ, v) for v in values]
    op_name, value, mask = cmp.get("op"), cmp.get("value"), cmp.get("mask", 0)
    op = CmpOp.named(op_name) if isinstance(op_name, str) else None
    if op is None:
        reader.error(path, "E018", f"{dotted(path)}: unknown operator {op_name!r}", f"one of: {', '.join(ARG_OPS)}")
        return None
    if not _u64(value) or not _u64(mask):
        reader.error(path, "E018", f"{dotted(path)}: 'value' (and 'mask') must be integers from 0 to 2**64-1 (a register is 64 bits)", hint)
        return None
    if op is CmpOp.MASKED_EQ and "mask" not in cmp:
        reader.error(path, "E018", f"{dotted(path)}: masked_eq needs a 'mask'", hint)
        return None
    return [ArgCmp(arg, op, value, mask)]


def _parse_errno(reader: Reader, path: KeyPath, table: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    from .. import _seccomp

    out: list[tuple[str, str]] = []
    for syscall, name in table.items():
        spath = path + (syscall,)
        if not reader.item_ok(spath, syscall, items.SYSCALL):
            continue
        try:
            _seccomp.errno_number(str(name))
        except ValueError:
            reader.error(spath, "E019", f"unknown errno {name!r}", "an errno by its name, such as \"ENOSYS\" or \"EPERM\"")
            continue
        out.append((syscall, str(name)))
    return tuple(out)
