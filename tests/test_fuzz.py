"""Issue 14's fuzzer, in the suite: hostile policies (Hypothesis over the
policy language with hostile values) and byte-level mutations of the shipped
examples, profiles, importer inputs and logs go through the command line in
process. The law: exit 0, 1 or 2 and never an exception (a traceback); an
error (2) names where; and every generated policy ``check`` accepts compiles
for every target and is accepted by the real apparmor_parser.

Budget: a few hundred inputs, well under two minutes on a loaded CI machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from conftest import EXAMPLES, ROOT, apparmor_compile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import escape
from corral.cli import main

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

GLOB_ALPHABET = list("/ab.-_*?[]{},^\\@~") + ["**", "{,", "..", "[z-a]", "\u2028", "\x85", "é", " "]
VALUE = st.one_of(
    st.lists(st.sampled_from(GLOB_ALPHABET), max_size=20).map(lambda parts: "/" + "".join(parts)),
    st.sampled_from(["tcp:443", "udp:53", "tcp:1-65535", "tcp:0", "tcp:99999999", "tcp:*", "tcp:[::1]:443", "tcp:10.0.0.0/33:1", "tcp:a.example:443", "tcp:*.x:1"]),
    st.sampled_from(["read", "nosuch", "net_raw", "CAP_SYS_ADMIN", "tcp", "tls-certs", "stdio", "base", ""]),
    st.text(max_size=12),
)
KEYS = {
    "Filesystem": ["ReadOnly", "Writable", "Exec", "Deny", "LogOnWrite", "Libraries", "Flags"],
    "Networking": ["Connect", "Bind", "Protocols", "SocketOptions", "Flags", "Deny", "ALPN"],
    "Runtime": ["Flags", "DenyFlags"],
    "User": ["Capabilities", "DenyCapabilities", "Flags"],
    "Misc": ["Syscalls", "DenySyscalls", "Flags"],
}
CMP = st.fixed_dictionaries(
    {"arg": st.integers(-1, 7), "op": st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "masked_eq", "x"]), "value": st.integers(-1, 2**65)},
    optional={"mask": st.integers(0, 2**64), "in": st.lists(st.integers(0, 9), max_size=3)},
)


def _toml_value(v: object) -> str:
    if isinstance(v, str):
        return escape.toml_string(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)


@st.composite
def hostile_policies(draw: st.DrawFn) -> str:
    lines = [f"Name = {escape.toml_string(draw(st.sampled_from(['p', 'x-1', '', 'a b', '.a'])))}"]
    if draw(st.booleans()):
        lines.append(f"Extends = {_toml_value(draw(st.lists(st.sampled_from(['base', 'nosuch', './nope.toml', '/etc/hostname', 'a' * 300]), max_size=2)))}")
    for section, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=3))
        if chosen:
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(draw(st.lists(VALUE, max_size=4)))}" for k in chosen]
    if draw(st.booleans()):
        call = draw(st.sampled_from(["umask", "socket", "ioctl", "nosuch"]))
        alts = draw(st.lists(st.lists(CMP, max_size=3), max_size=3))
        lines += ["[[Flag]]", 'Name = "f"', 'Description = "d"', f"Syscalls = {_toml_value(draw(st.lists(VALUE, max_size=2)))}"]
        lines.append(f"Args = {{ {call} = {_toml_value(alts)} }}")
        if draw(st.booleans()):
            lines.append(f'Errno = {{ {call} = {escape.toml_string(draw(st.sampled_from(["EPERM", "ENOSYS", "EBOGUS"])))} }}')
    return "\n".join(lines) + "\n"


#: CPU seconds one input may take in process: a few hundred times what any
#: input needs (under 0.5 s). CPU time, not wall time, so a loaded machine
#: does not fail it; only a runaway (quadratic ranges, a backtracking
#: glob) does.
CPU_BUDGET = 60.0


class OverBudget(Exception):
    """One input used more than CPU_BUDGET seconds of CPU."""


@contextlib.contextmanager
def _cpu_budget(seconds: float = CPU_BUDGET) -> Iterator[None]:
    def over(signum: int, frame: object) -> None:
        raise OverBudget(f"more than {seconds} s of CPU on one input")

    previous = signal.signal(signal.SIGPROF, over)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _cli(*args: str) -> tuple[int, str]:
    """Run corral in process; an exception here is the traceback we hunt,
    and OverBudget the runaway."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _cpu_budget():
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return status, err.getvalue()


_ERROR_LINE = re.compile(r"^(?P<where>.*?): error\[(?P<code>[A-Z]\d{3})\]: ", re.M)
_POSITION = re.compile(r":\d+:\d+$")
#: Verdicts on a whole file, with no one place to point at: another kind of
#: file (F003), an AppArmor file without a profile (A006).
WHOLE_FILE = {"F003", "A006"}
_KEY_PATH = re.compile(r"^[A-Za-z_][\w-]*(?:\[\d+\]|\.[\w-]+)*: ")


def _located(status: int, err: str, file: str, positions: bool = True) -> None:
    """The law for one run: exit 0, 1 or 2, never a traceback; an error
    (2) says where, and where the input has positions (policies, profiles,
    TOML, JSON, logs: ``positions``) every error carries file:line:col."""
    assert status in (0, 1, 2), (status, err)
    assert "Traceback" not in err, err
    if status != 2:
        return
    errors = list(_ERROR_LINE.finditer(err))
    assert errors, err
    for m in errors:
        where = m["where"]
        assert where.startswith(("/", "<")) or "corral" in where, err  # a file, or the verb for command-line mistakes
        if positions and where.startswith("/") and m["code"] not in WHOLE_FILE:
            rest = err[m.end() :].split("\n", 1)[0]
            # importers locate a wrong value in a parsed document by its key path (syscalls[2].action): json keeps no positions
            assert _POSITION.search(where) or (m["code"] == "F002" and _KEY_PATH.match(rest)), f"an error without line:col: {m.group()}{rest}\n{err}"


@SETTINGS
@given(text=hostile_policies())
def test_hostile_policies_check_and_what_check_accepts_compiles_and_loads(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "p.toml"
        policy.write_text(text)
        status, err = _cli("check", str(policy))
        _located(status, err, str(policy))
        if status != 0:
            return
        out = Path(tmp) / "out"
        status, err = _cli("compile", str(policy), "-o", str(out), "--allow-unenforced")
        assert status == 0, err  # whatever check accepts compiles, for every target
        proc = apparmor_compile((out / next(p.name for p in out.iterdir() if p.suffix == ".apparmor")).read_bytes(), Path(tmp))
        assert proc.returncode == 0, text + proc.stderr  # and the consumer accepts it


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    """A few byte-level mutations of the kinds that broke corral before."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randrange(len(out) + 1)
        kind = rnd.randrange(7)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] = rnd.randrange(256)
        elif kind == 1:
            out[at:at] = rnd.choice([b"\0", b"\xff\xfe", b"\n", b"\xe2\x80\xa8", b"[", b"{", b'"', b"\\", b"=", b"#", b",", b"[[" * 400, b"{a," * 300])
        elif kind == 2:
            del out[at : at + rnd.randint(1, 40)]
        elif kind == 3:
            out = out[:at]  # truncation
        elif kind == 4:
            line_start = out.rfind(b"\n", 0, at) + 1
            line_end = out.find(b"\n", at)
            line = out[line_start : line_end if line_end != -1 else len(out)]
            out[line_start:line_start] = line + b"\n"  # a duplicated line (duplicate keys, tables)
        elif kind == 5:
            out[at:at] = str(rnd.choice([0, -1, 2**64, 99999999, 1.5])).encode()
        else:
            out[at:at] = rnd.choice([b"/**a" * 20 + b"b", b"{,,,}", b"[z-a]", b"a" * 5000])
    return bytes(out)


def _mutations(sources: list[Path], seed: int) -> list[tuple[Path, bytes]]:
    rnd = random.Random(seed)
    return [(src, _mutate(src.read_bytes(), rnd)) for src in sources for _ in range(8)]


def test_mutated_examples_give_located_errors(tmp_path: Path) -> None:
    for i, (src, data) in enumerate(_mutations(EXAMPLES, 14)):
        policy = tmp_path / f"{i}-{src.name}"
        policy.write_bytes(data)
        for verb in ("check", "explain", "lint"):
            status, err = _cli(verb, str(policy))
            _located(status, err, str(policy))


PROFILES = sorted((ROOT / "tests/fixtures").rglob("*.apparmor"))


def test_mutated_apparmor_profiles_give_located_errors(tmp_path: Path) -> None:
    for i, (src, data) in enumerate(_mutations(PROFILES, 9)):
        profile = tmp_path / f"{i}-{src.name}"
        profile.write_bytes(data)
        for args in (("explain", str(profile)), ("lint", str(profile)), ("import", "apparmor", str(profile)), ("diff", str(PROFILES[0]), str(profile))):
            status, err = _cli(*args)
            _located(status, err, str(profile))


BANE = b'Name = "nginx"\n[Filesystem]\nReadOnlyPaths = ["/etc/nginx/**"]\nWritablePaths = ["/var/log/nginx/**"]\nAllowExec = ["/usr/sbin/nginx"]\n[Capabilities]\nAllow = ["chown", "setuid"]\n[Network]\nRaw = false\nProtocols = ["tcp"]\n'
SECCOMP = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}, {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}, {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}).encode()


def test_mutated_importer_inputs_give_located_errors(tmp_path: Path) -> None:
    rnd = random.Random(3)
    for i in range(60):
        for fmt, base in (("bane", BANE), ("docker-seccomp", SECCOMP)):
            src = tmp_path / f"{i}.{fmt}"
            src.write_bytes(_mutate(base, rnd))
            status, err = _cli("import", fmt, str(src))
            _located(status, err, str(src))


def test_mutated_logs_give_located_errors(tmp_path: Path) -> None:
    from test_learn import AUDIT, STRACE

    rnd = random.Random(5)
    for i in range(40):
        for name, base in (("audit.log", AUDIT.encode()), ("trace.strace", STRACE.encode())):
            log = tmp_path / f"{i}-{name}"
            log.write_bytes(_mutate(base, rnd))
            status, err = _cli("learn", str(log))
            _located(status, err, str(log))


GLOB_PARTS = ["a", "b", "/", "*", "**", "?", "[ab]", "[^a]", "[a-c]", "{a,b}", "{,a}", "\\*", ".", "-"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(parts=st.lists(st.sampled_from(GLOB_PARTS), max_size=8), path=st.text(alphabet="ab/.-*c", max_size=12))
def test_the_linear_matcher_agrees_with_the_regex_translation(parts: list[str], path: str) -> None:
    """globs.matches (no backtracking) answers as the regex run plans use."""
    from corral.policy import globs

    glob = "/" + "".join(parts)
    try:
        globs.validate(glob)
    except globs.GlobError:
        return
    assert globs.matches(glob, "/" + path) == any(globs.to_regex(alt).fullmatch("/" + path) is not None for alt in globs.expand(glob))


def test_a_glob_that_backtracks_is_matched_in_linear_time() -> None:
    from corral.policy import globs

    assert not globs.matches("/" + "**a" * 40 + "**b", "/" + "a" * 3000 + "c")  # minutes with a backtracking regex


def test_the_cpu_budget_stops_a_runaway() -> None:
    """The budget itself can fail: a loop past it is stopped."""
    import pytest

    with pytest.raises(OverBudget), _cpu_budget(0.2):
        while True:
            pass


VALID = {
    "Filesystem": {"ReadOnly": "glob", "Writable": "glob", "Deny": "glob", "LogOnWrite": "glob", "Exec": "glob", "Flags": ["tls-certs"]},
    "Networking": {"Connect": ["tcp:443", "udp:53", "tcp:8000-8010", "tcp:*", "tcp:10.0.0.0/8:5432", "tcp:[2001:db8::1]:443", "tcp:api.example.com:443", "tcp:*.example.org:443"], "Bind": ["tcp:8080", "udp:5353", "tcp:9000-9003"], "Deny": ["tcp:10.1.0.0/16:5432", "tcp:bad.example.com:443", "tcp:8005"], "Protocols": ["tcp", "udp"], "Flags": ["dns", "outgoing"], "SocketOptions": ["tcp_nodelay", "so_keepalive"]},
    "Runtime": {"Flags": ["stdio", "malloc", "threads"]},
    "User": {"Capabilities": ["net_bind_service", "chown"], "DenyCapabilities": ["sys_admin"]},
    "Misc": {"Syscalls": ["read", "write", "openat", "getrandom"], "DenySyscalls": ["ptrace"]},
}
SEGMENTS = ["etc", "srv", "data", "a-b", "x.conf", "*", "**", "?", "[ab]", "[^a]", "[a-c]", "{a,b}", "{,c}", "f*", "\\*"]


def _valid_policy(rnd: random.Random) -> str:
    """A policy built from valid values only, so that check accepts most."""
    lines = ['Name = "v"'] + (['Extends = ["base"]'] if rnd.random() < 0.5 else [])
    for section, keys in VALID.items():
        lines.append(f"[{section}]")
        for key, values in keys.items():
            if rnd.random() < 0.5:
                continue
            if values == "glob":
                picked = ["/" + "/".join(rnd.choice(SEGMENTS) for _ in range(rnd.randint(1, 4))) + rnd.choice(["", "/"]) for _ in range(rnd.randint(1, 3))]
            else:
                picked = rnd.sample(values, rnd.randint(1, len(values)))
            lines.append(f"{key} = {_toml_value(picked)}")
    return "\n".join(lines) + "\n"


def test_a_sample_of_policies_check_accepts_all_compile_and_load_in_apparmor_parser(tmp_path: Path) -> None:
    """The done-means, honestly sized: hostile policies are mostly refused,
    so a second generator draws from valid values; at least 40 of 50 must be
    accepted, and every accepted one compiles for every target and is loaded
    by the real apparmor_parser (zero rejections)."""
    rnd = random.Random(14)
    accepted = 0
    for i in range(50):
        policy = tmp_path / f"v{i}.toml"
        text = _valid_policy(rnd)
        policy.write_text(text)
        status, err = _cli("check", str(policy))
        _located(status, err, str(policy))
        if status != 0:
            continue
        accepted += 1
        out = tmp_path / f"out{i}"
        status, err = _cli("compile", str(policy), "-o", str(out), "--allow-unenforced")
        assert status == 0, text + err
        proc = apparmor_compile((out / "v.apparmor").read_bytes(), tmp_path)
        assert proc.returncode == 0, text + proc.stderr
    assert accepted >= 40, accepted
