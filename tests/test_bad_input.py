"""Issue 14: every bad input is a located error (exit 2), never a traceback,
a hang or a runaway; limits are errors that name the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.cli import main
from corral.errors import PolicyError

H = 'Name = "t"\n'
FLAG = '[[Flag]]\nName = "f"\nDescription = "d"\n'
#: (what, policy text, the located error expected: line:col: error[CODE]: words)
CASES = [
    ("backwards class", H + '[Filesystem]\nReadOnly = ["/a/[z-a]"]\n', "3:18: error[E008]", "character range 'z-a' runs backwards"),
    ("escape in class", H + '[Filesystem]\nReadOnly = ["/a/[a-\\\\]]"]\n', "3:20: error[E008]", "backslash inside a character class"),
    ("empty alternatives hang apparmor_parser", H + '[Filesystem]\nReadOnly = ["/a/{,,,}/b"]\n', "3:19: error[E008]", "more than one empty alternative"),
    ("brace nesting", H + '[Filesystem]\nReadOnly = ["/' + "{a," * 500 + "b" + "}" * 500 + '"]\n', "3:63: error[E008]", "more than 16 brace groups"),
    ("path length", H + '[Filesystem]\nReadOnly = ["/' + "a/" * 3000 + 'b"]\n', "3:4110: error[E008]", "path of 6002 bytes, longer than 4096"),
    ("path length in bytes", H + '[Filesystem]\nReadOnly = ["/' + "\U0001f600" * 4095 + '"]\n', "3:1038: error[E008]", "path of 16381 bytes, longer than 4096"),
    ("TOML nesting", H + "x = " + "[" * 5000 + "]" * 5000 + "\n", "2:37: error[E001]", "nested more than 32 deep"),
    ("inline table nesting", H + "x = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n", "2:101: error[E001]", "nested more than 32 deep"),
    ("two comparisons on one argument", H + FLAG + 'Args = { umask = [[{ arg = 0, op = "ge", value = 1 }, { arg = 0, op = "le", value = 2 }]] }\n[Misc]\nFlags = ["f"]\n', "5:55: error[E018]", "a second comparison on argument 0"),
    ("value beyond a register", H + FLAG + 'Args = { umask = [[{ arg = 0, op = "eq", value = 18446744073709551616 }]] }\n[Misc]\nFlags = ["f"]\n', "5:20: error[E018]", "integers from 0 to 2**64-1"),
    ("'in' lists multiplying", H + FLAG + "Args = { umask = [[" + ", ".join(f"{{ arg = {a}, in = [{', '.join(map(str, range(60)))}] }}" for a in range(6)) + "]] }\n[Misc]\nFlags = [\"f\"]\n", "5:19: error[E018]", "46656000000 alternatives after expanding 'in' lists (the limit is 256)"),
    ("long template name", H + 'Extends = ["' + "a" * 300 + '"]\n', "2:12: error[E010]", "unknown template"),
    ("long file name", H + 'Extends = ["./' + "a" * 300 + '.toml"]\n', "2:12: error[E010]", "extended policy"),
    ("NUL in Extends", H + 'Extends = ["a\\u0000b"]\n', "2:12: error[E010]", "no NUL"),
]


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    policy = tmp_path / "p.toml"
    policy.write_text(text)
    status = main(["check", str(policy)])
    return status, capsys.readouterr().err


@pytest.mark.parametrize(("what", "text", "where", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_located_error(what: str, text: str, where: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _check(tmp_path, text, capsys)
    assert status == 2, err
    assert f"{tmp_path / 'p.toml'}:{where}" in err and words in err, err


def test_an_extends_chain_has_a_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(40):
        (tmp_path / f"p{i}.toml").write_text(f'Name = "p{i}"\nExtends = ["./p{i + 1}.toml"]\n' if i < 39 else 'Name = "last"\n')
    assert main(["check", str(tmp_path / "p0.toml")]) == 2
    err = capsys.readouterr().err
    assert "error[E010]: Extends chain longer than 16 policies" in err and "Traceback" not in err


def test_a_file_that_is_not_a_policy_is_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:20228:0:99999:7:::\n")
    status, err = _check(tmp_path, H + f'Extends = ["{secret}"]\n', capsys)
    assert status == 2 and "SECRETHASH" not in err and "root:" not in err, err
    assert "is not a valid policy" in err and "line 1, column 5" in err


def test_errno_eperm_compiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """EPERM is the filter's default answer: libseccomp refused the rule
    that repeats it (PermissionError at compile, after check said ok)."""
    policy = tmp_path / "p.toml"
    policy.write_text(H + FLAG + 'Errno = { umask = "EPERM" }\n[Misc]\nFlags = ["f"]\n')
    assert main(["compile", str(policy), "-t", "bpf", "-t", "seccomp", "-o", str(tmp_path), "--allow-unenforced"]) == 0, capsys.readouterr().err
    assert (tmp_path / "t.bpf").stat().st_size > 0


def test_one_empty_alternative_is_accepted_by_apparmor_parser(tmp_path: Path) -> None:
    from conftest import apparmor_compile, ir_of

    from corral.backends import BACKENDS

    profile = BACKENDS["apparmor"].emit(ir_of('[Filesystem]\nReadOnly = ["/a/{,b}/c", "/x/{y,{,z}}"]\n')).content
    proc = apparmor_compile(profile, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_messages_never_drive_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A value with an escape sequence or a newline is shown escaped, and a
    megabyte line is shown around the caret only."""
    status, err = _check(tmp_path, H + '[Misc]\nSyscalls = ["\\u001b]0;owned\\u0007\\nx"]\nDeny = ["' + "a" * 1_000_000 + '"]\n', capsys)
    assert status == 2
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;owned\\x07\\nx" in err
    assert len(err) < 5000, len(err)


def test_did_you_mean_is_computed_only_for_errors_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 unknown names took a minute: a hint was computed for each,
    though 20 errors are shown. Counted, not timed."""
    from corral.errors import MAX_ERRORS
    from corral.policy import suggest

    calls = []
    real = suggest.did_you_mean
    monkeypatch.setattr(suggest, "did_you_mean", lambda word, options: calls.append(word) or real(word, options))
    status, err = _check(tmp_path, H + "[Misc]\nSyscalls = [" + ", ".join(f'"nosuch{i}"' for i in range(20000)) + "]\n", capsys)
    assert status == 2 and f"... and {20000 - MAX_ERRORS} more errors" in err
    assert len(calls) == MAX_ERRORS


def test_the_json_schema_uses_only_ecma_patterns() -> None:
    """Editors validate with JavaScript regexes: '(?P<' is Python-only."""
    from corral.policy.jsonschema import schema_text

    assert "(?P<" not in schema_text()


def test_the_path_limit_is_in_bytes_and_what_check_accepts_apparmor_parser_loads(tmp_path: Path) -> None:
    """4,095 four-byte characters passed a limit counted in characters and
    overflowed apparmor_parser's token buffer (measured: a quoted path over
    16,380 bytes fails). The longest path check accepts loads."""
    from conftest import apparmor_compile, ir_of

    from corral.backends import BACKENDS

    longest = "/" + "\u00e9" * 2047 + "a"  # 4096 bytes
    profile = BACKENDS["apparmor"].emit(ir_of(f'[Filesystem]\nReadOnly = ["{longest}"]\nDeny = ["{longest[:-3]}/**"]\n')).content
    proc = apparmor_compile(profile, tmp_path)
    assert proc.returncode == 0, proc.stderr


def _random_paths(count: int, seed: int = 1) -> list[str]:
    import random

    rnd = random.Random(seed)
    return ["/d/" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(50)) for _ in range(count)]


@pytest.mark.parametrize(
    ("what", "body", "words"),
    [
        ("100k paths (apparmor_parser exit 10, no message)", "[Filesystem]\nReadOnly = [" + ", ".join(f'"/d/f{i}"' for i in range(100_000)) + "]\n", "more paths than corral compiles: the limit is 10,000"),
        ("2,000 random paths (Too many states for type state_t)", "[Filesystem]\nReadOnly = [" + ", ".join(f'"{p}"' for p in _random_paths(2000)) + "]\n", "DFA states by here: the limit is 60,000"),
        ("200 ranges of 1024 ports", '[Networking]\nProtocols = ["tcp"]\nConnect = [' + ", ".join(f'"tcp:10.0.{i}.1:1-1024"' for i in range(200)) + "]\n", "more port, host and peer rules than corral compiles (one per port of each range): the limit is 100,000"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_size_limits_are_located_errors_at_check_that_name_the_limit(what: str, body: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _check(tmp_path, H + body, capsys)
    assert status == 2, err
    assert f"{tmp_path / 'p.toml'}:{3 + body.startswith('[Net')}:" in err and "error[E024]" in err and words in err, err


def test_the_largest_profile_check_accepts_loads_in_apparmor_parser(tmp_path: Path) -> None:
    """Just under the DFA estimate: apparmor_parser builds the profile (the
    limit is measured, not guessed: 2,000 such paths need 91,119 states and
    fail)."""
    from conftest import apparmor_compile

    from corral.backends import BACKENDS
    from corral.lower import MAX_DFA_ESTIMATE, lower
    from corral.policy import load_policy_text

    paths = _random_paths(2000)

    def policy(n: int) -> str:
        return H + "[Filesystem]\nReadOnly = [" + ", ".join(f'"{p}"' for p in paths[:n]) + "]\n"

    count = MAX_DFA_ESTIMATE // 52  # ~50 new characters each: under the estimate
    lower(load_policy_text(policy(count)))
    while True:  # the first count check refuses
        try:
            lower(load_policy_text(policy(count + 20)))
        except PolicyError:
            break
        count += 20
    assert count < 2000
    proc = apparmor_compile(BACKENDS["apparmor"].emit(lower(load_policy_text(policy(count)))).content, tmp_path)
    assert proc.returncode == 0, proc.stderr


EXEC_PAIRS = [
    ('"/usr/bin/*"', '"/usr/bin/f*" = "foo"'),
    ('"/usr/bin/*"', '"/usr/bin/**" = "foo"'),
    ('"/usr/bin/*"', '"/usr/bin/foo" = "foo"'),  # an exact path takes precedence: loads
    ('"/usr/bin/{foo,bar}"', '"/usr/bin/foo" = "foo"'),  # braces are not exact
    ('"/usr/bin/a*"', '"/usr/bin/b*" = "foo"'),
    ('"/usr/*/x"', '"/usr/bin/y*" = "foo"'),
    ('"/usr/bin/f[a-z]o"', '"/usr/bin/f[^a]o" = "foo"'),
    ('"/usr/bin/[ab]"', '"/usr/bin/[^ab]" = "foo"'),
    ('"/usr/bin/f?o"', '"/usr/{bin,sbin}/f*" = "foo"'),
    ('"/opt/*/bin/*"', '"/opt/x/**" = "foo"'),
    ('"/opt/*/bin/*"', '"/opt/x/lib/**" = "foo"'),
    ('"/usr/bin/*"', '"/usr/bin/{foo,bar}" = "foo"'),  # braces of literals are exact
    ('"/usr/bin/foo"', '"/usr/bin/{foo,ba*}" = "foo"'),
    ('"/usr/bin/foo"', '"/usr/bin/fo[o]" = "foo"'),
    ('"/usr/bin/\\\\*"', '"/usr/bin/*" = "foo"'),
    ('"/usr/bin/foo", "/usr/bin/bar"', '"/usr/bin/{bar,baz}" = "foo"'),
]


@pytest.mark.parametrize(("exec_", "profiles"), EXEC_PAIRS)
def test_exec_and_exec_profiles_check_agrees_with_apparmor_parser(exec_: str, profiles: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlapping Exec and ExecProfiles globs made apparmor_parser fail
    ("conflicting x modifiers") after check said ok. Now check refuses
    (E025, at the later entry) exactly the pairs whose profile the real
    parser refuses: the profile corral would write without the check is
    given to it."""
    from conftest import apparmor_compile

    import corral.lower
    from corral.backends import BACKENDS
    from corral.policy import load_policy_text

    policy = load_policy_text(H + f"[Filesystem]\nExec = [{exec_}]\nExecProfiles = {{ {profiles} }}\n")
    try:
        corral.lower.lower(policy)
    except PolicyError as exc:
        assert exc.diagnostics[0].code == "E025" and exc.diagnostics[0].span.line == 4, str(exc)
        refused = True
    else:
        refused = False
    monkeypatch.setattr(corral.lower, "_check_exec_modes", lambda files: None)
    proc = apparmor_compile(BACKENDS["apparmor"].emit(corral.lower.lower(policy)).content, tmp_path)
    assert refused == (proc.returncode != 0), (refused, proc.stderr)
