"""The key registry fails closed: every key has a kind with a checker, a
lowering handler and a doc; a key, a kind or a flag list named wrongly in
code is an error, never an empty list or an unchecked string."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from corral import lower as lowering
from corral._seccomp import _lib
from corral.errors import DiagnosticCollector, InternalError
from corral.ir import IR, RULE_KINDS, Rule
from corral.policy import catalog, items, load_policy_text, schema
from corral.policy.items import ItemKind, PortSpec
from corral.policy.model import CmpOp
from corral.policy.reader import Reader

POLICY = """
[Networking]
Flags = ["outgoing"]
Protocols = ["tcp"]
Connect = ["tcp:10.0.0.0/8:5432", "tcp:8000-8002"]
[Filesystem]
Writable = ["/run/app/**"]
ExecProfiles = { "/usr/bin/helper" = "helper" }
"""


def test_every_policy_key_has_a_handler_a_doc_and_a_checked_kind() -> None:
    assert set(lowering.HANDLERS) == set(schema.POLICY_KEYS)
    for spec in schema.POLICY_KEYS:
        assert spec.doc, spec
        assert spec.section in schema.CATEGORIES, spec
        if spec.shape in ("strings", "map"):
            assert isinstance(spec.item, ItemKind), spec
    assert [k.key for k in schema.SECTIONS["Networking"]][:2] == ["Flags", "DenyFlags"]


def test_every_item_kind_has_a_doc_an_example_and_a_schema() -> None:
    for name, kind in items.KINDS.items():
        assert kind.name == name and kind.doc and kind.example
        assert kind.json_schema()


def test_a_key_without_a_handler_does_not_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = load_policy_text(POLICY)
    handlers = dict(lowering.HANDLERS)
    del handlers[schema.FS_WRITABLE]
    monkeypatch.setattr(lowering, "HANDLERS", handlers)
    with pytest.raises(InternalError, match="Filesystem.Writable has no lowering handler"):
        lowering.lower(policy)


def test_a_key_typo_in_code_is_an_error_not_an_empty_list() -> None:
    policy = load_policy_text(POLICY)
    assert [i.value for i in policy.get(schema.FS_WRITABLE)] == ["/run/app/**"]
    with pytest.raises(AttributeError):
        schema.FS_WRITEABLE  # type: ignore[attr-defined]  # noqa: B018
    for wrong in ("Filesystem.Writeable", "Filesystem.Writable"):  # strings are not keys
        with pytest.raises(InternalError, match="not a key of the policy language"):
            policy.get(wrong)  # type: ignore[arg-type]
    invented: schema.KeySpec[str] = schema.KeySpec("Filesystem", "Writeable", "strings", items.PATH, "typo")
    with pytest.raises(InternalError):
        policy.get(invented)
    with pytest.raises(InternalError, match="flags have no list key"):
        catalog.flags()["dns"].list("Conect")


def test_an_unknown_item_kind_fails_closed() -> None:
    with pytest.raises(InternalError, match="unknown item kind"):
        items.kind("execprofiles")
    reader = Reader("p.toml", 'X = ["a"]\n', {"X": ["a"]}, DiagnosticCollector())
    with pytest.raises(InternalError, match="is not an item kind"):
        reader.items(("X",), ['evil"} ,\n rule'], "path")  # type: ignore[arg-type]

    class Unchecked(ItemKind[str]):
        name = "unchecked"

    with pytest.raises(InternalError, match="has no checker"):
        reader.items(("X",), ['evil"} ,\n rule'], Unchecked())


def test_items_are_parsed_once_into_typed_values() -> None:
    policy = load_policy_text(POLICY)
    assert [i.parsed for i in policy.get(schema.NET_CONNECT)] == [PortSpec("tcp", "10.0.0.0/8", 5432, 5432), PortSpec("tcp", "", 8000, 8002)]
    (profile,) = policy.get(schema.FS_EXEC_PROFILES)
    assert (profile.value, profile.parsed.program, profile.parsed.profile) == ("/usr/bin/helper", "/usr/bin/helper", "helper")
    ir = lowering.lower(policy)
    assert {(p.address, p.port) for p in ir.ports} == {("10.0.0.0/8", 5432), ("", 8000), ("", 8001), ("", 8002)}
    assert [f.transition for f in ir.files if f.path == "/usr/bin/helper"] == ["helper"]
    # the flags' own ports are typed too
    assert all(isinstance(i.parsed, PortSpec) for f in catalog.flags().values() for k in ("Connect", "Bind") for i in f.list(k))


def test_rule_kinds_are_listed_once() -> None:
    assert tuple(k.cls for k in RULE_KINDS) == get_args(Rule)
    fields = {name for name, value in IR.__dataclass_fields__.items() if "tuple" in str(value.type)}
    assert {k.field for k in RULE_KINDS} == fields - {"denied_syscalls", "refusals", "lifted", "unported", "write_exec"}  # not rules a backend covers


def test_comparison_operators_carry_their_names() -> None:
    lib: Any = _lib()
    assert len({op.policy for op in CmpOp}) == len({op.oci for op in CmpOp}) == len(CmpOp)
    for op in CmpOp:
        assert op.oci == f"SCMP_CMP_{op.libseccomp}"
        getattr(lib, op.libseccomp)  # the real binding knows it
        assert CmpOp.named(op.policy) is op and CmpOp.from_oci(op.oci) is op
    with pytest.raises(TypeError):  # a string comparison would silently be False
        assert CmpOp.EQ != "eq"


def test_the_reader_does_not_import_the_catalogue() -> None:
    """catalog -> flagdefs -> reader -> items, and no module-level import
    back to the catalogue (item kinds look data up when they check)."""
    import ast
    from pathlib import Path

    root = Path(schema.__file__).parent
    for module in ("reader", "flagdefs", "items", "schema", "model", "suggest", "locate", "globs"):
        tree = ast.parse((root / f"{module}.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names}
                assert node.module != "catalog" and "catalog" not in names, f"{module} imports the catalogue"
