"""Issue 9 class 9: no string that is not a policy value can add a line, a
key or a rule to an artifact or a generated policy.

The attack: a newline (or U+2028, U+0085, ...) in the policy file's path,
in a Description, in a path the policy allows, echoed into each artifact's
header comments. Law: an artifact built from hostile strings has exactly
the lines of the one built from plain strings (``str.splitlines`` knows
every line break any consumer does), differing only in comment lines; and
the real consumers read both the same.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import escape
from corral.backends import BACKENDS
from corral.lower import lower
from corral.policy import load_policy_text

from conftest import apparmor_compile

ROOT = Path(__file__).resolve().parent.parent

#: What an attacker would write into a file name, a description or a path.
PAYLOADS = [
    "\nalias / -> /x/,\n",
    "\nExecStartPre=+/bin/sh -c id\n",
    "\nflush ruleset\n",
    "\nprivileged: true\n",
    "\u2028evil: 1\u2029",
    "\x85x: 1",
    "\r\n  - /\r",
    "\x1c\x1d\x1e\v\f",
    "\u202e\ufeff",
]
HOSTILE = st.text(alphabet=st.one_of(st.sampled_from(sorted(escape.LINE_BREAKS) + ["\0", "\x1b", "#", "\\", '"', "\udcff", "\u202e"]), st.characters()), max_size=30)
#: A Description is a policy value: the loader takes one line of printable text.
DESCRIPTION = HOSTILE.filter(escape.one_line)


def _policy(description: str, component: str) -> str:
    return (
        f'Name = "inj"\nDescription = {escape.toml_string(description)}\n'
        f"[Filesystem]\nReadOnly = [{escape.toml_string('/srv/' + component + '/*')}]\n"
        f"Writable = [{escape.toml_string('/run/' + component + '/**')}]\n"
        '[Networking]\nConnect = ["tcp:443"]\n[Runtime]\nFlags = ["stdio", "exec"]\n[User]\nCapabilities = ["net_bind_service"]\n'
    )


#: Path components the glob validator accepts (it refuses ASCII controls and quotes).
COMPONENT = HOSTILE.filter(lambda s: s.strip(".") != "" and not any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF or c in '"\\{}[]*?,^@/' for c in s))


def _build(target: str, source: str, description: str, component: str) -> bytes:
    ir = lower(load_policy_text(_policy(description, component), source))
    return BACKENDS[target].emit(ir).content


def _same_structure(target: str, hostile: bytes, plain: bytes) -> None:
    if target == "bpf":
        assert hostile == plain
        return
    if BACKENDS[target].suffix.endswith(".json"):  # strings may carry the source (spans): same keys, same shape
        assert _shape(json.loads(hostile)) == _shape(json.loads(plain))
        return
    h, p = hostile.decode().splitlines(), plain.decode().splitlines()
    assert len(h) == len(p), "\n".join(h)
    for a, b in zip(h, p):
        assert a == b or (a.lstrip().startswith("#") and b.lstrip().startswith("#")), (a, b)


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "" if isinstance(value, str) else value


@pytest.mark.parametrize("target", list(BACKENDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=HOSTILE, description=DESCRIPTION)
def test_header_strings_cannot_add_lines(target: str, source: str, description: str) -> None:
    _same_structure(target, _build(target, source, description, "plain"), _build(target, "plain.toml", "plain" if description else "", "plain"))


@pytest.mark.parametrize("target", list(BACKENDS))
@settings(max_examples=25, deadline=None)
@given(component=COMPONENT)
def test_paths_cannot_add_lines_outside_quoted_values(target: str, component: str) -> None:
    """A path is a policy value: it may change quoted values, never add a line
    (a U+2028 in a path once ended a YAML comment in docker.yaml)."""
    if target == "bpf":
        return
    plain, hostile = _build(target, "p.toml", "d", "plain").decode(), _build(target, "p.toml", "d", component).decode()
    if BACKENDS[target].suffix.endswith(".json"):
        # JSON escapes every line break inside a string; its layout may differ
        # with the host (the Landlock file gives a path that exists as a
        # directory more rights), so compare what a consumer parses.
        assert json.loads(hostile).keys() == json.loads(plain).keys()
        return
    breaks = "\n\r\x85\u2028\u2029" if BACKENDS[target].suffix.endswith(".yaml") else "\n\r"  # as each consumer reads lines
    assert len(re.split(f"[{breaks}]", hostile)) == len(re.split(f"[{breaks}]", plain)), hostile


@pytest.mark.parametrize("payload", PAYLOADS)
def test_consumers_read_hostile_artifacts_like_plain_ones(payload: str, tmp_path: Path) -> None:
    """The real parsers: apparmor_parser, nft -c, systemd-analyze, PyYAML."""
    source, description = f"/tmp/a{payload}b.toml", payload.replace("\n", " ").replace("\r", " ").replace("\0", "")
    description = "".join(c for c in description if escape.is_safe_char(c))
    component = "x" + "".join(c for c in payload if c not in "/\\,{}[]:" and ord(c) >= 0x20 and ord(c) != 0x7F) + "y"  # a path may hold U+2028 and U+0085
    built = {t: _build(t, source, description, component) for t in BACKENDS}
    plain = {t: _build(t, "p.toml", "d", component) for t in BACKENDS}
    proc = apparmor_compile(built["apparmor"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for t in ("docker", "kubernetes"):
        assert list(yaml.safe_load_all(built[t])) == list(yaml.safe_load_all(plain[t]))
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if Path(nft).exists():
        (tmp_path / "r.nft").write_bytes(built["nftables"])
        proc = subprocess.run([nft, "-c", "-f", str(tmp_path / "r.nft")], capture_output=True, text=True)
        assert proc.returncode == 0 and "flush" not in proc.stdout, proc.stderr
    analyze = shutil.which("systemd-analyze")
    if analyze:
        from test_ship import _unit

        unit = _unit(tmp_path, built["systemd"].decode())
        proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert proc.returncode == 0 and "corral.conf" not in proc.stderr, proc.stderr


def test_a_newline_in_the_policy_file_name_adds_no_rule(tmp_path: Path) -> None:
    """Through the command line, as the attack arrived: a real file whose
    directory names carry an AppArmor alias and a systemd root hook."""
    hostile = tmp_path / "a\nalias / -> /x/,\nExecStartPre=+" / "bin" / "sh\nflush ruleset\n\u2028k: 1\udcff.toml"
    hostile.parent.mkdir(parents=True)
    hostile.write_text('Name = "t"\n[Filesystem]\nReadOnly = ["/etc/hostname"]\n[Networking]\nConnect = ["tcp:443"]\n')
    out = tmp_path / "out"
    out.mkdir()
    corral = Path(sys.executable).with_name("corral")
    proc = subprocess.run([str(corral), "compile", str(hostile), "-o", str(out), "--allow-unenforced"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for artifact in out.iterdir():
        text = artifact.read_bytes().decode("utf-8", "replace")
        for line in text.splitlines():
            assert not line.startswith(("alias", "ExecStartPre", "flush", "k:")), (artifact.name, line)
    assert "\\xff" in (out / "t.apparmor").read_text()  # the undecodable byte is said, not replaced


# -- importers and generated policies -----------------------------------------------

SECCOMP_INJECTION = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": '0, op = "eq", value = 0 }]\n[Filesystem]\nWritable = ["/**"]\nExec = ["/bin/sh"]\n#', "value": 0, "op": "SCMP_CMP_EQ"}]}],
}


def _import(tmp_path: Path, fmt: str, content: str) -> tuple[int, str, str]:
    from corral.cli import main

    path = tmp_path / "in.data"
    path.write_text(content)
    out = tmp_path / "out.toml"
    proc = subprocess.run([str(Path(sys.executable).with_name("corral")), "import", fmt, str(path), "-o", str(out)], capture_output=True, text=True)
    return proc.returncode, proc.stderr, out.read_text() if out.exists() else ""


def test_docker_seccomp_string_index_is_an_error_not_a_policy(tmp_path: Path) -> None:
    status, err, written = _import(tmp_path, "docker-seccomp", json.dumps(SECCOMP_INJECTION))
    assert status == 2 and written == "", written
    assert "syscalls[0].args[0].index: expected an integer, found a string" in err and "Traceback" not in err


def test_bane_string_paths_are_an_error_not_one_path_per_character(tmp_path: Path) -> None:
    status, err, written = _import(tmp_path, "bane", 'Name = "x"\n[Filesystem]\nWritablePaths = "/etc"\n')
    assert status == 2 and written == ""
    assert "Filesystem.WritablePaths: expected an array, found a string" in err


@settings(max_examples=60, deadline=None)
@given(name=HOSTILE, path=HOSTILE, cap=HOSTILE)
def test_bane_import_writes_only_what_it_read(name: str, path: str, cap: str) -> None:
    """Whatever strings a bane profile holds, the imported policy parses, and
    its paths are exactly the bane paths that are valid globs."""
    from corral.analyze.importers import from_bane
    from corral.policy import globs

    text = f"Name = {escape.toml_string(name.encode('utf-8', 'replace').decode())}\n[Filesystem]\nWritablePaths = [{escape.toml_string(('/' + path).encode('utf-8', 'replace').decode())}]\n[Capabilities]\nAllow = [{escape.toml_string(cap.encode('utf-8', 'replace').decode())}]\n"
    import tomllib

    source = tomllib.loads(text)
    policy = tomllib.loads(from_bane(text, "in.toml").render("in\n[x]\u2028.toml", "bane"))
    wanted = [p for p in source["Filesystem"]["WritablePaths"] if _valid(globs, p)]
    assert policy.get("Filesystem", {}).get("Writable", []) == wanted
    assert set(policy) <= {"Name", "Description", "Filesystem", "User", "Networking"}


def _valid(globs: object, p: str) -> bool:
    try:
        globs.validate(p)  # type: ignore[attr-defined]
        return True
    except globs.GlobError:  # type: ignore[attr-defined]
        return False


@settings(max_examples=60, deadline=None)
@given(data=st.recursive(st.none() | st.booleans() | st.integers(-3, 2**65) | HOSTILE.map(lambda s: s.encode("utf-8", "replace").decode()), lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(["names", "action", "args", "index", "value", "op", "errnoRet", "includes", "caps", "arches"]), kids, max_size=4), max_leaves=12))
def test_docker_seccomp_import_never_writes_files_or_crashes(data: object) -> None:
    """Mutated seccomp JSON: a located error, or a policy with no file,
    network or exec grant (a seccomp profile has none to import)."""
    from corral._base import CorralError
    from corral.analyze.importers import from_docker_seccomp

    doc = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}, data]}
    try:
        imp = from_docker_seccomp(json.dumps(doc), "in.json")
    except CorralError as exc:
        assert exc.render().startswith("in.json: error[F002]: ")
        return
    import tomllib

    policy = tomllib.loads(imp.render("in.json", "docker-seccomp"))
    assert set(policy) <= {"Name", "Description", "Misc", "Flag"}


@settings(max_examples=80, deadline=None)
@given(why=HOSTILE, header=HOSTILE, note=HOSTILE, description=HOSTILE, value=HOSTILE)
def test_learned_and_traced_policies_hold_only_their_additions(why: str, header: str, note: str, description: str, value: str) -> None:
    """Evidence comments, headers (a traced command line), notes and the
    description come from logs and argv: they stay comments and text. A
    value that TOML cannot hold (an undecodable byte) is left out and said."""
    import tomllib

    from corral.learn.merge import merge_text
    from corral.learn.synth import Additions, render

    additions = Additions()
    additions.add("Filesystem", "ReadOnly", "/etc/hostname", why)
    additions.add("Filesystem", "ReadOnly", "/srv/" + value, "x")
    additions.notes.append(note)
    text = render(additions, name="t", description=description, header=[header], extends=["base"])
    policy = tomllib.loads(text)
    from corral.policy import schema
    from corral.policy.items import Problem

    # kept: what TOML can hold and the policy language accepts; the rest is said in a note
    readable = [v for v in ["/etc/hostname", "/srv/" + value] if not any(0xD800 <= ord(c) <= 0xDFFF for c in v) and not isinstance(schema.FS_READ_ONLY.item.parse(v), Problem)]  # type: ignore[union-attr]
    assert len(readable) == 2 or any("left out of Filesystem.ReadOnly" in n for n in additions.notes), additions.notes
    assert policy == {"Name": "t", "Description": escape.visible(description), "Extends": ["base"], "Filesystem": {"ReadOnly": readable}}
    merged = tomllib.loads(merge_text('Name = "t"\n[Filesystem]\nWritable = ["/tmp/x"]\n', additions))
    assert merged["Filesystem"] == {"Writable": ["/tmp/x"], "ReadOnly": readable}


def test_a_newline_in_a_traced_argument_adds_no_key(tmp_path: Path) -> None:
    """`corral trace -- true $'\\nExtends = ["/etc/passwd"]'`: the command line
    lands in the header and the description, as one line each."""
    import tomllib

    corral = Path(sys.executable).with_name("corral")
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (dev.sh installs it)")
    out = tmp_path / "t.toml"
    proc = subprocess.run([str(corral), "trace", "-o", str(out), "--", "/bin/true", '\nExtends = ["/etc/passwd"]\n\u2028[User]'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    policy = tomllib.loads(out.read_text())
    assert "Extends" not in policy and "User" not in policy
    assert "\\n" in policy["Description"]


@pytest.mark.parametrize("char", ["\u2028", "\x85", "\u202e", "\n"])
def test_a_description_is_one_line_in_every_syntax(char: str) -> None:
    from corral.errors import PolicyError

    with pytest.raises(PolicyError, match="E011"):
        load_policy_text(f"Description = {escape.toml_string('a' + char + 'b')}\n", "p.toml")
