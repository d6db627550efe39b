"""What a newcomer hits first, each as the command line answers it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

from corral import __version__
from corral.backends import BACKENDS
from corral.install import apparmor_enabled

AGENT = str(ROOT / "examples/agent-http2.toml")


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True)


def test_version() -> None:
    proc = corral("--version")
    assert proc.returncode == 0 and proc.stdout == f"corral {__version__}\n"


def test_help_lists_every_target() -> None:
    for args in (("--help",), ("compile", "--help")):
        out = corral(*args).stdout
        for name, target in BACKENDS.items():
            assert f"  {name:13} {target.summary}" in out, (args, name)


def test_named_targets_write_and_warn_on_stderr() -> None:
    proc = corral("compile", AGENT, "-t", "seccomp", "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["defaultAction"] == "SCMP_ACT_ERRNO"
    assert proc.stderr.startswith(f"{AGENT}: warning[C001]: ")
    assert "ports (would be enforced by landlock, nftables, egress)" in proc.stderr
    assert "= hint: --strict makes this an error" in proc.stderr


def test_strict_named_targets_and_all_targets_stay_fail_closed(tmp_path: Path) -> None:
    strict = corral("compile", AGENT, "-t", "seccomp", "-o", "-", "--strict")
    assert strict.returncode == 2 and strict.stdout == "" and strict.stderr.startswith(f"{AGENT}: error[C001]: ")
    policy = tmp_path / "p.toml"  # LogOnWrite is enforced by AppArmor only; drop it from the targets
    policy.write_text('[Filesystem]\nLogOnWrite = ["/etc/**"]\n')
    everything = corral("compile", str(policy), "-o", str(tmp_path / "out"))
    assert everything.returncode == 0, everything.stderr  # all targets: apparmor covers it
    assert corral("compile", str(policy), "-t", "seccomp", "-t", "landlock", "-o", str(tmp_path / "o2"), "--strict").returncode == 2


def test_the_unenforced_list_is_grouped() -> None:
    proc = corral("compile", AGENT, "-t", "seccomp", "-o", "-", "--allow-unenforced")
    assert proc.returncode == 0
    gaps = proc.stderr.split("not enforced by any selected target:")[1].splitlines()[1:]
    assert 0 < len(gaps) < 10, gaps  # one line per kind of rule and closing targets, not one per rule
    assert any(line.lstrip().startswith(tuple("0123456789")) and "files (would be enforced by" in line for line in gaps)


def test_check_and_compile_json(tmp_path: Path) -> None:
    check = corral("check", AGENT, "--json")
    assert check.returncode == 0, check.stderr
    data = json.loads(check.stdout)
    assert data["ok"] and data["name"] == "agent-http2" and data["coverage"]["targets"] == list(BACKENDS)
    rule = next(r for r in data["coverage"]["rules"] if r["rule"] == "tcp connect 53")
    assert rule["selected"]["landlock"]["level"] == "exact" and rule["selected"]["seccomp"]["level"] == "none"
    name = next(r for r in data["coverage"]["rules"] if r["rule"] == "tcp connect api.example.com 443")
    assert name["selected"]["egress"]["level"] == "approx" and name["selected"]["apparmor"]["level"] == "none"
    bad = tmp_path / "bad.toml"
    bad.write_text('[Networking]\nFlags = ["dsn"]\n')
    failed = corral("check", str(bad), "--json")
    assert failed.returncode == 2
    assert json.loads(failed.stdout)["errors"][0] | {"hint": ""} == {"file": str(bad), "line": 2, "col": 10, "code": "E004", "severity": "error", "message": "unknown flag 'dsn' in Networking.Flags", "hint": ""}
    compiled = corral("compile", AGENT, "-o", str(tmp_path), "--json")
    assert compiled.returncode == 0, compiled.stderr
    report = json.loads(compiled.stdout)
    assert report["targets"] == list(BACKENDS) and report["unenforced"] == 0
    assert f"written   {tmp_path}/agent-http2.apparmor" in compiled.stderr


@pytest.mark.skipif(apparmor_enabled(), reason="checks the behaviour on a kernel without AppArmor")
def test_install_dry_run_without_apparmor_shows_the_steps_and_says_so(tmp_path: Path) -> None:
    proc = corral("install", AGENT, "--dir", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "corral install: note: this kernel has no AppArmor enabled" in proc.stderr
    assert f"would write   {tmp_path}/corral.agent-http2" in proc.stdout
    assert "would skip    loading: no AppArmor in this kernel" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_uninstall_dry_run_of_nothing_installed_is_no_error(tmp_path: Path) -> None:
    proc = corral("uninstall", "nope", "--dir", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"corral uninstall: note: {tmp_path}/corral.nope is not installed: nothing to remove\n"
    real = corral("uninstall", "nope", "--dir", str(tmp_path), "--write-only")
    assert real.returncode == 2 and "error[I005]" in real.stderr


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to an unprivileged user first")
def test_verify_as_a_user_tells_file_permissions_from_the_policy() -> None:
    """/run/x owned by root: as nobody the write is denied by the plain file
    permissions, which says nothing about the policy; verify says so and
    does not count it as a failure. The denial the policy makes still counts."""
    work = Path(tempfile.mkdtemp(prefix="corral-verify-"))
    try:
        work.chmod(0o755)
        private = work / "private"
        private.mkdir(mode=0o755)  # root's: nobody may not write here, whatever the policy says
        policy = work / "p.toml"
        policy.write_text(
            f'Extends = ["base"]\n[Filesystem]\nWritable = ["{private}/**"]\n'
            f'[[Test]]\nName = "writes its directory"\nProbe = "write"\nPath = "{private}/x"\nExpect = "allow"\n'
            f'[[Test]]\nName = "no writing elsewhere"\nProbe = "write"\nPath = "/tmp/corral-verify-{os.getpid()}"\nExpect = "deny"\n'
        )
        policy.chmod(0o644)
        env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
        as_root = subprocess.run([sys.executable, "-m", "corral.cli", "verify", str(policy)], capture_output=True, text=True, cwd=ROOT)
        assert as_root.returncode == 0, as_root.stdout + as_root.stderr
        proc = subprocess.run([*NOBODY, sys.executable, "-m", "corral.cli", "verify", str(policy)], capture_output=True, text=True, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        row = next(line for line in proc.stdout.splitlines() if "writes its directory" in line)
        assert row.split()[0] == "N/A" and "denied by file permissions, not by the policy (EACCES unconfined too, as uid 65534)" in row
        assert next(line for line in proc.stdout.splitlines() if "no writing elsewhere" in line).split()[0] == "PASS"
        assert proc.stdout.rstrip().endswith("0 failed, 1 not testable as this user (denied without the policy too)")
        assert not private.joinpath("x").exists()
    finally:
        shutil.rmtree(work)


def test_verify_shows_why_a_command_was_refused() -> None:
    proc = corral("verify", AGENT)
    last = [line for line in proc.stdout.splitlines() if line.startswith("  ")][-1]
    assert "exit 2: error[R005]: cat could not start under this policy: the policy does not allow executing" in last, last
    assert "hint" not in last


def test_import_says_the_installed_libseccomp_does_not_know_a_call(tmp_path: Path) -> None:
    from corral import _seccomp

    unknown = "mseal" if not _seccomp.is_known("mseal") else "no_such_call_corral"
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid", unknown], "action": "SCMP_ACT_ALLOW"}]}))
    proc = corral("import", "docker-seccomp", str(profile))
    assert proc.returncode == 0, proc.stderr
    assert f"system call '{unknown}': the installed libseccomp ({_seccomp.libseccomp_version()}) does not know it on x86_64 or aarch64" in proc.stderr
    assert "exist on neither" not in proc.stderr


def test_tests_needing_outside_data_skip_and_name_it() -> None:
    from conftest import reference

    with pytest.raises(pytest.skip.Exception, match=r"needs Docker's default seccomp profile at .*/shared/reference/nope\.json \(outside reference data, not shipped with corral\)"):
        reference("nope.json", "Docker's default seccomp profile")


def test_run_help_is_full_help() -> None:
    from corral.sandbox.runner import _FLAGS

    proc = corral("run", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: corral run ")
    for flag in (*_FLAGS, "--log-to", "--plan-fd", "--help"):
        options = [line.strip() for line in proc.stdout.split("options:")[1].splitlines()]
        assert any(line.startswith((f"{flag} ", f"{flag},")) or f", {flag} " in line for line in options), flag  # every option explained
        assert flag in proc.stdout.splitlines()[0] or flag in ("-q", "--quiet", "-v", "--verbose", "--help"), flag
    assert "exit status" in proc.stdout


def test_a_deny_guarding_a_template_or_flag_is_not_redundant(tmp_path: Path) -> None:
    """The README's Deny lines guard against base or a flag widening later:
    no CR009. The same denies in a policy that builds on nothing are noise."""
    clean = corral("lint", AGENT, "--severity", "info")
    assert clean.returncode == 0 and clean.stdout == "" and clean.stderr.strip() == "no findings"
    alone = tmp_path / "alone.toml"
    alone.write_text('[Filesystem]\nReadOnly = ["/etc/hosts"]\nDeny = ["/tmp/**"]\n[User]\nDenyCapabilities = ["sys_admin"]\n')
    out = corral("lint", str(alone), "--severity", "info").stdout
    assert "CR009 `deny /tmp/**` denies what nothing grants" in out and "CR009 `deny capability sys_admin`" in out
    extends = tmp_path / "extends.toml"
    extends.write_text('Extends = ["base"]\n' + alone.read_text())
    assert "CR009" not in corral("lint", str(extends), "--severity", "info").stdout
