"""The escaping helpers, against the real readers of each syntax."""

from __future__ import annotations

import tomllib

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from corral import escape

#: Text an attacker would choose: every line break any consumer knows,
#: quotes, comment and rule syntax, controls, bidi overrides, astral chars.
HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(escape.LINE_BREAKS) + ['"', "'", "\\", "#", ",", "{", "}", "[", "]", "=", "+", "\0", "\t", "\x1b", "\u202e", "\ufeff", "\U0001f600", "-", ":"]),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=40,
)


@given(HOSTILE)
def test_comment_is_one_line_for_every_consumer(text: str) -> None:
    line = escape.comment(text)
    assert len((line + "\nx").splitlines()) == 2  # str.splitlines knows every line break YAML, TOML and the rest do
    assert line.startswith("#")
    assert tomllib.loads(line + "\nk = 1\n") == {"k": 1}  # TOML also refuses controls in comments
    assert yaml.safe_load(line + "\nk: 1\n") == {"k": 1}


@given(HOSTILE)
def test_toml_string_reads_back_exactly(text: str) -> None:
    assert tomllib.loads(f"k = {escape.toml_string(text)}\n") == {"k": text}


@given(HOSTILE)
def test_yaml_string_reads_back_exactly(text: str) -> None:
    assert yaml.safe_load(f"k: {escape.yaml_string(text)}\n") == {"k": text}


def test_undecodable_bytes_are_said_not_replaced() -> None:
    name = b"/srv/caf\xe9/x".decode("utf-8", "surrogateescape")
    assert escape.comment(name) == "# /srv/caf\\xe9/x"
    with pytest.raises(escape.Unrepresentable, match=r"\\xe9"):
        escape.toml_string(name)
    with pytest.raises(escape.Unrepresentable):
        escape.yaml_string(name)
