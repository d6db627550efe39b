"""The AppArmor backend, checked by the real apparmor_parser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import EXAMPLES, apparmor_compile, ir_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import PolicyError
from corral.backends import BACKENDS
from corral.lower import lower
from corral.policy import load_policy


def profile_of(text: str) -> str:
    return BACKENDS["apparmor"].emit(ir_of(text)).content.decode()


def rule_lines(profile: str) -> list[str]:
    body = profile[profile.index("{\n") + 2 : profile.rindex("}")]
    return [l.strip() for l in body.splitlines() if l.strip() and not l.strip().startswith("#")]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_compiles_with_apparmor_parser(example: Path, tmp_path: Path) -> None:
    profile = BACKENDS["apparmor"].emit(lower(load_policy(example))).content
    result = apparmor_compile(profile, tmp_path)
    assert result.returncode == 0, result.stderr


def test_agent_profile_has_no_shared_tmp_and_denies_it(tmp_path: Path) -> None:
    profile = BACKENDS["apparmor"].emit(lower(load_policy(Path(__file__).parent.parent / "examples/agent-http2.toml"))).content.decode()
    lines = rule_lines(profile)
    assert 'deny "/tmp/{,**}" rwlkmx,' in lines
    assert not any(re.match(r'"/(var/)?tmp', l) for l in lines)
    assert '"/run/agent-http2/**" rwlk,' in lines
    assert '"/usr/local/bin/agent" rmix,' in lines
    assert "network inet stream," in lines and "network inet6 stream," in lines
    assert not any(l.startswith("network") and "raw" in l for l in lines)
    assert "deny capability sys_admin," in lines


def test_deny_inside_allow(tmp_path: Path) -> None:
    profile = profile_of('[Filesystem]\nWritable = ["/srv/**"]\nDeny = ["/srv/secret/**"]\n')
    assert rule_lines(profile) == ['"/srv/**" rwlk,', 'deny "/srv/secret/{,**}" rwlkmx,']
    assert apparmor_compile(profile, tmp_path).returncode == 0


def test_allow_inside_deny_is_dropped() -> None:
    profile = profile_of('[Filesystem]\nWritable = ["/tmp/app/**"]\nDeny = ["/tmp/**"]\n')
    assert rule_lines(profile) == ['deny "/tmp/{,**}" rwlkmx,']


def test_log_on_write_inside_a_writable_path_is_audited(tmp_path: Path) -> None:
    profile = profile_of('[Filesystem]\nWritable = ["/etc/app/**"]\nLogOnWrite = ["/etc/**"]\n')
    assert rule_lines(profile) == ['"/etc/app/**" rwlk,', 'audit "/etc/app/**" w,']
    assert apparmor_compile(profile, tmp_path).returncode == 0


def test_capabilities_and_mediated_operations(tmp_path: Path) -> None:
    profile = profile_of('[Misc]\nFlags = ["ptrace"]\n[Runtime]\nFlags = ["proc"]\n[User]\nDenyCapabilities = ["sys_admin"]\n')
    lines = rule_lines(profile)
    assert "capability sys_ptrace," in lines and "deny capability sys_admin," in lines
    assert "signal (send, receive) peer=test," in lines and "signal," not in lines and "ptrace," in lines
    assert apparmor_compile(profile, tmp_path).returncode == 0


@pytest.mark.parametrize(
    "name",
    ["x {\n  /** rwx,\n}\nprofile y", "a b", "a,b", "-x", "x}"],
)
def test_hostile_names_are_rejected(name: str) -> None:
    with pytest.raises(PolicyError) as info:
        ir_of(f"Name = {json.dumps(name)}\n")
    assert "error[E011]: invalid name" in str(info.value)


def test_hostile_description_is_rejected() -> None:
    with pytest.raises(PolicyError) as info:
        ir_of('Description = "ok\\n/** rwx,"\n')
    assert "error[E011]: text must be one line" in str(info.value)


HOSTILE = st.lists(st.sampled_from(list('/ab*?[]{},^"\\\n\0 #@rwx-.\t') + [" rw,", " deny ", "capability", "}\n"]), max_size=16).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(HOSTILE, HOSTILE.map(lambda s: "/" + s)))
def test_hostile_paths_never_inject(path: str) -> None:
    """A path is either rejected with a located E008, or becomes exactly one
    quoted rule that the real parser compiles."""
    import tempfile

    text = f"[Filesystem]\nWritable = [{json.dumps(path)}]\n"
    try:
        profile = profile_of(text)
    except PolicyError as exc:
        assert all(d.code == "E008" and d.span.line == 2 for d in exc.diagnostics), str(exc)
        return
    assert rule_lines(profile) == [f'"{path}" rwlk,']
    with tempfile.TemporaryDirectory() as tmp:
        result = apparmor_compile(profile, Path(tmp))
    assert result.returncode == 0, (path, result.stderr)


def test_exec_under_its_own_profile(tmp_path: Path) -> None:
    profile = profile_of('[Filesystem]\nExec = ["/usr/bin/tool"]\nExecProfiles = { "/usr/bin/helper" = "helper" }\n')
    assert rule_lines(profile) == ['"/usr/bin/helper" rmpx -> helper,', '"/usr/bin/tool" rmix,']
    assert apparmor_compile(profile, tmp_path).returncode == 0


@pytest.mark.parametrize(("program", "target", "message"), [
    ("/usr/bin/x", "other profile", "invalid name 'other profile'"),
    ("/usr/bin/x", "x, /** rwx", "invalid name 'x, /** rwx'"),
    ('/usr/bin/x" rwx, "/y', "ok", "double quote in path"),
])  # fmt: skip
def test_exec_profiles_cannot_inject(program: str, target: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        profile_of(f"[Filesystem]\nExecProfiles = {{ {json.dumps(program)} = {json.dumps(target)} }}\n")
    assert message in str(info.value)
