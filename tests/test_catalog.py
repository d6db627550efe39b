"""The flag catalogue: valid names everywhere, the seeds' flags present,
and docs/flags.md in step with the data."""

from __future__ import annotations

import pytest
from conftest import ROOT

from corral import _seccomp
from corral.docs import flags_markdown
from corral.policy import catalog

FLAGS = catalog.flags()


def _all_syscalls() -> set[str]:
    names: set[str] = set()
    for flag in FLAGS.values():
        names.update(flag.syscalls)
        names.update(n for n, _ in flag.args)
        names.update(n for n, _ in flag.errno)
    return names


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_syscall_name_is_known_to_libseccomp(arch: str) -> None:
    unknown = sorted(n for n in _all_syscalls() if _seccomp.resolve(n, arch) == -1)
    assert unknown == []


def test_every_syscall_exists_on_some_arch() -> None:
    assert sorted(n for n in _all_syscalls() if not _seccomp.is_known(n)) == []


def test_a_misspelt_syscall_is_not_known() -> None:
    assert not _seccomp.is_known("opne")
    assert _seccomp.is_known("openat") and _seccomp.is_known("open")  # open: x86_64 only


def test_the_seeds_flags_exist_in_their_categories() -> None:
    expected = {"dns": "Networking", "ping": "Networking", "incoming": "Networking", "outgoing": "Networking",
                "tmp": "Filesystem", "malloc": "Runtime", "create": "User"}  # fmt: skip
    assert {n: FLAGS[n].category for n in expected} == expected


def test_pledge_like_promises_exist() -> None:
    for name in ("stdio", "rpath", "wpath", "cpath", "exec", "proc", "threads", "time", "signal", "tty", "unix", "fattr"):
        assert name in FLAGS, name


def test_every_flag_has_a_one_line_description() -> None:
    for flag in FLAGS.values():
        assert flag.description and "\n" not in flag.description, flag.name


@pytest.mark.parametrize("openbsd", ["getentropy", "minherit", "mquery", "setugid", "chflags"])
def test_openbsd_syscalls_are_mapped_in_the_text(openbsd: str) -> None:
    assert any(openbsd in f.notes for f in FLAGS.values())
    assert not _seccomp.is_known(openbsd)


def test_ping_carries_net_raw() -> None:
    assert [i.value for i in FLAGS["ping"].list("Capabilities")] == ["net_raw"]


def test_docs_flags_md_is_fresh() -> None:
    assert (ROOT / "docs/flags.md").read_text() == flags_markdown(), "regenerate: corral flags --markdown > docs/flags.md"


def test_catalogue_passes_every_user_check() -> None:
    """At run time the shipped catalogue is trusted; here it gets the full
    checks a user's policy gets (syscall names, paths, options, ...)."""
    assert catalog.validate_flags().keys() == FLAGS.keys()


def test_shipped_syscall_table_matches_libseccomp() -> None:
    """Validation reads a shipped table; libseccomp must know every name in
    it, on the arch it is listed for."""
    table = _seccomp.table_from_libseccomp()
    shipped = _seccomp._table()
    for arch, names in shipped.items():
        assert sorted(names) == table[arch], f"regenerate with: python -m corral._seccomp ({arch})"


def test_docs_policy_language_md_is_fresh() -> None:
    from corral.docs import language_markdown

    assert (ROOT / "docs/policy-language.md").read_text() == language_markdown(), "regenerate: corral flags --language > docs/policy-language.md"
