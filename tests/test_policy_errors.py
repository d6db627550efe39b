"""Located errors, asserted as the full messages a user sees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

from corral import PolicyError, load_policy
from corral.errors import MAX_ERRORS
from corral.policy import schema

PROPOSAL_RAW = """\
[Networking]
Flags = [
    # this will allow sendto(2), recvfrom(2), socket(2), connect(2)
    "dns",
    # adds CAP_NET_RAW
    "ping"

    # very high-level
    "incoming"
    "outgoing"
]
"""


def error_of(tmp_path: Path, text: str, name: str = "p.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return str(info.value).replace(str(tmp_path) + "/", "")


def test_proposal_raw_example_is_invalid_toml_with_a_hint(tmp_path: Path) -> None:
    assert error_of(tmp_path, PROPOSAL_RAW) == (
        'p.toml:9:5: error[E001]: invalid TOML: Unclosed array\n'
        ' 9 |     "incoming"\n'
        '   |     ^\n'
        '  = hint: is a \',\' missing after "ping" on line 6? Every array item but the last needs one'
    )


def test_proposal_example_with_commas_loads() -> None:
    policy = load_policy(ROOT / "examples/proposal.toml")
    assert [i.value for i in policy.get(schema.FLAGS["Networking"])] == ["dns", "ping", "incoming", "outgoing"]


def test_a_key_set_twice_points_at_the_second_and_names_the_first(tmp_path: Path) -> None:
    """tomllib reports the end of the statement (past the end of the line)
    and never the first definition; the error carets the second key and the
    hint names where the first is."""
    text = '[Filesystem]\nReadOnly = [\n  "/a",\n]\nWritable = ["/b"]\n  ReadOnly = ["/c"]   # again\n'
    assert error_of(tmp_path, text) == (
        "p.toml:6:3: error[E001]: invalid TOML: ReadOnly is defined twice\n"
        ' 6 |   ReadOnly = ["/c"]   # again\n'
        "   |   ^^^^^^^^\n"
        "  = hint: first defined at p.toml:2:1; define it once"
    )


@pytest.mark.parametrize(
    ("text", "where", "caret", "message", "first"),
    [
        ("[Runtime]\nFlags = []\n[Misc]\n[Runtime]\n", "4:2", " ^^^^^^^", "Runtime is defined twice", "first defined at p.toml:1:2"),
        ('Filesystem.ReadOnly = ["/a"]\n[Filesystem]\n', "2:2", " ^^^^^^^^^^", "Filesystem is defined twice", "already defined by Filesystem.ReadOnly at p.toml:1:1"),
        ('[Runtime]\nFlags = []\n"Flags" = []\n', "3:1", "^^^^^^^", '"Flags" is defined twice', "first defined at p.toml:2:1"),
        ('[[Flag]]\nName = "f"\nArgs = { umask = [], umask = [] }\n', "3:22", "                     ^^^^^", "umask is defined twice", "first defined at p.toml:3:10"),
        ('[[Flag]]\nName = "f"\nArgs = { umask = [] }\nArgs.socket = []\n', "4:1", "^^^^^^^^^^^", "Args.socket adds to Args, which is complete", "Args is defined at p.toml:3:1"),
        ('[[Flag]]\nName = "f"\n[Flag]\n', "3:2", " ^^^^", "Flag is an array of tables", "[[Flag]] at p.toml:1:3"),
    ],
)
def test_every_redefinition_is_located_with_its_first_definition(tmp_path: Path, text: str, where: str, caret: str, message: str, first: str) -> None:
    lines = error_of(tmp_path, text).split("\n")
    assert lines[0] == f"p.toml:{where}: error[E001]: invalid TOML: {message}"
    assert lines[2] == "   | " + caret
    assert first in lines[3]


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'Descripton = "x"\n') == (
        "p.toml:1:1: error[E002]: unknown key 'Descripton' in the policy's top level\n"
        ' 1 | Descripton = "x"\n'
        "   | ^^^^^^^^^^\n"
        "  = hint: did you mean 'Description'?"
    )


def test_unknown_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[Runtim]\nFlags = []\n") == (
        "p.toml:1:2: error[E002]: unknown key 'Runtim' in the policy's top level\n"
        " 1 | [Runtim]\n"
        "   |  ^^^^^^\n"
        "  = hint: did you mean 'Runtime'?"
    )


def test_unknown_key_in_section_lists_what_it_takes(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[Runtime]\nFoo = 1\n") == (
        "p.toml:2:1: error[E002]: unknown key 'Foo' in [Runtime]\n"
        " 2 | Foo = 1\n"
        "   | ^^^\n"
        "  = hint: [Runtime] takes: Flags, DenyFlags"
    )


def test_unknown_flag(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Networking]\nFlags = ["dsn"]\n') == (
        "p.toml:2:10: error[E004]: unknown flag 'dsn' in Networking.Flags\n"
        ' 2 | Flags = ["dsn"]\n'
        "   |          ^^^^^\n"
        "  = hint: did you mean 'dns'?"
    )


def test_flag_in_the_wrong_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Filesystem]\nFlags = ["malloc"]\n') == (
        "p.toml:2:10: error[E012]: flag 'malloc' belongs in [Runtime], not [Filesystem]\n"
        ' 2 | Flags = ["malloc"]\n'
        "   |          ^^^^^^^^\n"
        "  = hint: move it to [Runtime] Flags"
    )


def test_wrong_type(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Networking]\nFlags = "dns"\n') == (
        "p.toml:2:9: error[E003]: Networking.Flags must be a list of strings, found str\n"
        ' 2 | Flags = "dns"\n'
        "   |         ^^^^^\n"
        '  = hint: for example: Flags = ["...", "..."]'
    )


def test_capability_with_cap_prefix(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[User]\nCapabilities = ["CAP_NET_RAW"]\n') == (
        "p.toml:2:17: error[E006]: unknown capability 'CAP_NET_RAW'\n"
        ' 2 | Capabilities = ["CAP_NET_RAW"]\n'
        "   |                 ^^^^^^^^^^^^^\n"
        "  = hint: did you mean 'net_raw'? (lower case, without CAP_)"
    )


def test_unknown_syscall(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Misc]\nSyscalls = ["getpid", "opne"]\n') == (
        "p.toml:2:23: error[E005]: unknown system call 'opne'\n"
        ' 2 | Syscalls = ["getpid", "opne"]\n'
        "   |                       ^^^^^^\n"
        "  = hint: did you mean 'open'?"
    )


def test_socket_option_case(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Networking]\nSocketOptions = ["TCP_NODELAY"]\n') == (
        "p.toml:2:18: error[E007]: unknown socket option 'TCP_NODELAY'\n"
        ' 2 | SocketOptions = ["TCP_NODELAY"]\n'
        "   |                  ^^^^^^^^^^^^^\n"
        "  = hint: did you mean 'tcp_nodelay'? (names are case-sensitive)"
    )


def test_path_error_points_at_the_character(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Filesystem]\nWritable = ["/run/a/**", "/etc/a}b"]\n') == (
        "p.toml:2:33: error[E008]: invalid path '/etc/a}b': unbalanced '}'\n"
        ' 2 | Writable = ["/run/a/**", "/etc/a}b"]\n'
        "   |                                 ^\n"
        "  = hint: escape a literal brace as \\}"
    )


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("udp:x", "invalid port 'udp:x'"),
        ("tcp:300.1.2.3:443", "invalid address in 'tcp:300.1.2.3:443'"),
        ("tcp:0", "port out of range in 'tcp:0'"),
        ("tcp:9-3", "port out of range in 'tcp:9-3'"),
        ("443", "invalid port '443'"),
    ],
)
def test_bad_ports(tmp_path: Path, port: str, message: str) -> None:
    first = error_of(tmp_path, f'[Networking]\nConnect = ["{port}"]\n').splitlines()[0]
    assert first == f"p.toml:2:12: error[E009]: {message}"


def test_sockets_without_protocols(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Networking]\nFlags = ["outgoing"]\n').splitlines()[0] == (
        "p.toml:2:10: error[E015]: flag 'outgoing' opens sockets, but the policy allows no protocol"
    )


def test_all_errors_in_one_run(tmp_path: Path) -> None:
    text = '[Networking]\nFlags = ["dsn"]\nProtocols = ["quic"]\n[Misc]\nSyscalls = ["opne"]\n'
    lines = [l for l in error_of(tmp_path, text).splitlines() if "error[" in l]
    assert [l.split(": error")[0] for l in lines] == ["p.toml:2:10", "p.toml:3:14", "p.toml:5:13"]


def test_error_count_is_capped(tmp_path: Path) -> None:
    names = ", ".join(f'"nosuch{i}"' for i in range(MAX_ERRORS + 5))
    message = error_of(tmp_path, f"[Misc]\nSyscalls = [{names}]\n")
    assert message.count("error[E005]") == MAX_ERRORS
    assert message.endswith("... and 5 more errors")


def test_extends_unknown_template_and_missing_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, 'Extends = ["bsae", "./nope.toml"]\n')
    assert "p.toml:1:12: error[E010]: unknown template 'bsae'" in message
    assert "did you mean 'base'?" in message
    assert "p.toml:1:20: error[E010]: extended policy './nope.toml' not found" in message


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text('Extends = ["./p.toml"]\n')
    message = error_of(tmp_path, 'Extends = ["./b.toml"]\n')
    assert "error[E010]: Extends cycle" in message


def test_errors_in_an_extended_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "parent.toml").write_text('[Runtime]\nFlags = ["mallco"]\n')
    message = error_of(tmp_path, 'Extends = ["./parent.toml"]\n')
    assert message.startswith("parent.toml:2:10: error[E004]: unknown flag 'mallco' in Runtime.Flags")


def test_user_flag_errors(tmp_path: Path) -> None:
    text = """\
    [[Flag]]
    Name = "grpc"
    Description = "gRPC keepalives"
    Syscalls = ["setsockopt"]
    SocketOptions = ["so_keepalive", "tcp_keepidl"]
    Paths = ["/x"]
    [[Flag]]
    Name = "dns"
    Description = "mine"
    """
    message = error_of(tmp_path, text)
    assert "p.toml:5:34: error[E007]: unknown socket option 'tcp_keepidl'" in message
    assert "p.toml:6:1: error[E002]: unknown key 'Paths' in flag 'grpc'" in message
    assert "p.toml:8:8: error[E014]: flag 'dns' is already a built-in flag" in message


def test_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PROPOSAL_RAW)
    proc = subprocess.run([sys.executable, "-m", "corral.cli", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{path}:9:5: error[E001]: invalid TOML: Unclosed array")
    assert "Traceback" not in proc.stderr


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "none.toml")
    assert str(info.value).endswith("none.toml: error[E000]: cannot read policy: No such file or directory\n  = hint: check the path")


def test_missing_comma_on_one_line_names_the_item_before(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[Networking]\nConnect = ["tcp:443" "tcp:80"]\n').splitlines()[-1] == (
        '  = hint: is a \',\' missing after "tcp:443" on line 2? Every array item but the last needs one'
    )


def test_a_refining_setting_without_the_key_it_refines_is_an_error(tmp_path: Path) -> None:
    """ALPNOnly = true alone looked strict and checked nothing."""
    assert error_of(tmp_path, "[Networking]\nProtocols = [\"tcp\"]\nALPNOnly = true\n") == (
        "p.toml:3:1: error[E023]: Networking.ALPNOnly = true has no effect without Networking.ALPN\n"
        " 3 | ALPNOnly = true\n"
        "   | ^^^^^^^^\n"
        "  = hint: add ALPN = [...] to [Networking], or remove ALPNOnly"
    )
    (tmp_path / "parent.toml").write_text('[Networking]\nProtocols = ["tcp"]\nConnect = ["tcp:api.example.com:443"]\nALPN = ["h2"]\n')
    child = tmp_path / "child.toml"
    child.write_text('Extends = ["parent.toml"]\n[Networking]\nALPNOnly = true\n')
    assert load_policy(child).setting(schema.NET_ALPN_ONLY, False)  # ALPN from the parent: fine
