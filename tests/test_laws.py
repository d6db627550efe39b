"""The language's laws, as property tests across every backend:
deny overrides allow, and an empty policy allows nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from conftest import apparmor_compile, ir_of
from hypothesis import HealthCheck, given, settings
from strategies import FLAGS, policies

from corral.backends import BACKENDS, Level
from corral.backends.landlock import FS_RIGHTS, to_document
from corral.backends.seccomp import to_oci
from corral.compile import compile_ir
from corral.ir import IR
from corral.policy import globs, load_policy_text
from corral.policy import schema

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _values(text: str, key: schema.KeySpec[str]) -> list[str]:
    policy = load_policy_text(text, "law.toml")
    return [i.value for i in policy.get(key)]


def _denied(text: str) -> tuple[set[str], set[str], list[str], set[str]]:
    """Denied syscalls, capabilities, paths and socket options, from the text."""
    policy = load_policy_text(text, "law.toml")
    syscalls = set(_values(text, schema.MISC_DENY_SYSCALLS))
    caps = set(_values(text, schema.USER_DENY_CAPABILITIES))
    paths = _values(text, schema.FS_DENY)
    sockopts: set[str] = set()
    for section in ("Networking", "Filesystem", "Runtime", "User", "Misc"):
        for item in policy.get(schema.DENY_FLAGS[section]):
            flag = FLAGS[item.value]
            syscalls |= set(flag.syscalls) | {n for n, _ in flag.args} | {n for n, _ in flag.errno}
            caps |= {i.value for i in flag.list("Capabilities")}
            paths += [i.value for key in ("ReadOnly", "Writable", "Exec", "Libraries") for i in flag.list(key)]
            sockopts |= {i.value for i in flag.list("SocketOptions")}
    return syscalls, caps, paths, sockopts


def _oci_names(ir: IR) -> set[str]:
    return {n for e in to_oci(ir)["syscalls"] for n in e["names"]}


@SETTINGS
@given(policies())
def test_deny_overrides_allow_in_seccomp_and_capabilities(text: str) -> None:
    ir = ir_of(text, "law.toml")
    syscalls, caps, _, sockopts = _denied(text)
    assert not (_oci_names(ir) & syscalls)
    kept = BACKENDS["capabilities"].emit(ir).content.decode()
    assert not ({line.removeprefix("cap_") for line in kept.splitlines() if line.startswith("cap_")} & caps)
    assert not ({o.name for o in ir.socket_options} & sockopts)


@SETTINGS
@given(policies())
def test_deny_overrides_allow_in_apparmor(text: str) -> None:
    ir = ir_of(text, "law.toml")
    _, caps, paths, _ = _denied(text)
    profile = BACKENDS["apparmor"].emit(ir).content.decode()
    for path in paths:  # a denied DIR/** denies DIR/ too (the kernel's DIR/** does not match DIR/)
        denied = path[:-2] + "{,**}" if path.endswith("/**") else path
        assert f'  deny "{denied}" rwlkmx,' in profile
    for cap in caps:
        assert f"  capability {cap}," not in profile
    with tempfile.TemporaryDirectory() as tmp:
        result = apparmor_compile(profile, Path(tmp))
    assert result.returncode == 0, result.stderr


@SETTINGS
@given(policies())
def test_deny_in_landlock_is_enforced_or_reported(text: str) -> None:
    """Landlock cannot deny inside an allowed directory: then the coverage
    says NONE for that deny (never a silent gap); otherwise nothing granted
    reaches into the denied path."""
    ir = ir_of(text, "law.toml")
    doc, coverage = to_document(ir)
    levels = {c.rule: c.level for c in coverage if getattr(c.rule, "deny", False)}
    for rule, level in levels.items():
        if level == Level.NONE:
            continue
        for grant in doc["pathBeneath"]:
            parent = grant["parent"][0]
            for alt in globs.expand(rule.path):
                prefix = globs.literal_prefix(alt)
                assert not (prefix == parent or prefix.startswith(parent.rstrip("/") + "/")), (rule.path, parent)


@SETTINGS
@given(policies())
def test_compile_never_leaves_a_gap_unreported(text: str) -> None:
    """With every target selected, a rule no backend enforces is an error;
    with --allow-unenforced it still appears in the report."""
    ir = ir_of(text, "law.toml")
    result = compile_ir(ir, list(BACKENDS), allow_unenforced=True)
    assert len(result.rules) == len(ir.rules())
    for rc in result.rules:
        assert set(rc.selected) == set(BACKENDS)  # every backend speaks for every rule
        for cov in rc.selected.values():
            assert cov.level == Level.EXACT or cov.note, (rc.describe(), cov)  # a gap always says why


EMPTY = ir_of("", "empty.toml")


def test_empty_policy_lowers_to_nothing() -> None:
    assert EMPTY.rules() == ()


def test_empty_policy_in_every_backend(tmp_path: Path) -> None:
    oci = json.loads(BACKENDS["seccomp"].emit(EMPTY).content)
    assert oci["syscalls"] == [] and oci["defaultAction"] == "SCMP_ACT_ERRNO"
    profile = BACKENDS["apparmor"].emit(EMPTY).content.decode()
    body = profile[profile.index("{") + 1 : profile.index("}")]
    assert body.strip() == ""
    assert apparmor_compile(profile, tmp_path).returncode == 0
    caps = BACKENDS["capabilities"].emit(EMPTY).content.decode()
    assert [l for l in caps.splitlines() if l.startswith("cap_")] == []
    assert "--cap-drop=ALL" in caps and "--cap-add" not in caps
    doc = json.loads(BACKENDS["landlock"].emit(EMPTY).content)
    assert "pathBeneath" not in doc and "netPort" not in doc  # landlockconfig: no empty lists
    assert doc["ruleset"][0]["handledAccessFs"] == [r for r in FS_RIGHTS if r != "resolve_unix"]  # landlockconfig has no ABI 9 right
    assert doc["ruleset"][0]["handledAccessNet"] == ["bind_tcp", "connect_tcp"]
    assert doc["ruleset"][0]["scoped"] == ["abstract_unix_socket", "signal"]
    assert len(BACKENDS["bpf"].emit(EMPTY).content) > 0


def test_empty_sections_are_still_empty() -> None:
    text = "[Networking]\nFlags = []\n[Filesystem]\n[Runtime]\n[User]\n[Misc]\n"
    assert ir_of(text).rules() == ()


@SETTINGS
@given(policies())
def test_adding_an_allow_never_shrinks_seccomp(text: str) -> None:
    ir = ir_of(text, "law.toml")
    wider = ir_of(text.replace("\nSyscalls = [", '\nSyscalls = ["chroot", ', 1), "law.toml")
    assert _oci_names(ir) <= _oci_names(wider)
