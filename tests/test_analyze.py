"""explain, diff and import: on real policies, profiles and Docker's profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, apparmor_compile, reference

from corral.analyze.diff import diff
from corral.analyze.explain import exposure, markdown, summary
from corral.analyze.importers import import_file
from corral.analyze.view import views_of
from corral.backends.seccomp import to_oci
from corral.lower import lower
from corral.policy import load_policy_text
from corral.policy import schema

AGENT = str(ROOT / "examples/agent-http2.toml")
FORUM = str(ROOT / "tests/fixtures/forum-agent-http2.apparmor")
DOCKER_DEFAULT = ("docker-default-seccomp.json", "Docker's default seccomp profile (moby profiles/seccomp/default.json)")


def view(path: str):  # type: ignore[no-untyped-def]
    return views_of(path)[0][0]


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli", *args], capture_output=True, text=True)


# -- explain ------------------------------------------------------------------


def test_explain_agent_says_what_a_reviewer_needs() -> None:
    text = markdown(view(AGENT))
    assert "- **Outbound TCP ports**: 53" in text
    assert "- **Outbound by name** (corral run's egress supervisor): tcp:api.example.com:443 (TLS offering h2)" in text
    assert "- **Inbound connections**: not allowed" in text
    assert "- **Denied outright**: `/dev/shm/**`, `/tmp/**`, `/var/tmp/**`" in text
    assert "- **Socket options it may set**: so_keepalive, tcp_keepidle, tcp_keepintvl, tcp_nodelay" in text
    assert "- **landlock**: 44 file, 1 port" in text  # tcp:53; the name's 443 is only Landlock's floor


def test_exposure_ranks_the_forum_profile_far_above_the_agent_policy() -> None:
    agent, forum = exposure(view(AGENT)), exposure(view(FORUM))
    assert agent.score < 2.5 < 7.5 < forum.score
    reasons = [why for _, why in forum.reasons]
    assert "it may write the shared /tmp" in reasons
    assert "no system call is filtered (AppArmor does not filter system calls; seccomp does)" in reasons


def test_argument_filters_earn_credit(tmp_path: Path) -> None:
    filtered = tmp_path / "f.toml"
    filtered.write_text('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nSocketOptions = ["tcp_nodelay"]\n')
    open_ = tmp_path / "o.toml"
    open_.write_text('[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n[Misc]\nSyscalls = ["setsockopt"]\n')
    points = {why: p for p, why in exposure(view(str(filtered))).reasons}
    assert points["setsockopt: it can set socket options (argument-filtered)"] == 0.05
    assert {why: p for p, why in exposure(view(str(open_))).reasons}["setsockopt: it can set socket options"] == 0.4


def test_explain_json() -> None:
    proc = corral("explain", "--json", AGENT)
    data = json.loads(proc.stdout)
    assert data["network"]["connect_ports"] == [53] and data["network"]["connect_names"] == ["tcp:api.example.com:443"] and data["capabilities"] == []
    assert 0 <= data["exposure"]["score"] <= 10 and data["exposure"]["reasons"]


def test_explain_and_diff_refuse_every_artifact_that_is_not_a_policy_or_a_profile(tmp_path: Path) -> None:
    """Read as an AppArmor profile, a JSON artifact was one unnamed block
    granting nothing: diff said "no permission changed" and exited 0. Each
    of corral's own artifacts but the profile, and Docker's seccomp JSON,
    is now recognised and refused (exit 2, F003, its kind named)."""
    out = tmp_path / "out"
    assert corral("compile", AGENT, "-o", str(out)).returncode == 0
    docker = reference(DOCKER_DEFAULT[0], DOCKER_DEFAULT[1])
    others = sorted(p for p in out.iterdir() if p.suffix != ".apparmor")
    assert len(others) >= 8
    for artifact in [*others, docker]:
        for args in (("explain", str(artifact)), ("diff", str(out / "agent-http2.apparmor"), str(artifact)), ("diff", str(artifact), AGENT), ("lint", str(artifact))):
            proc = corral(*args)
            assert proc.returncode == 2 and proc.stdout == "", (args, proc.stdout, proc.stderr)
            where = f"{artifact}:1:2" if artifact.suffix == ".bpf" else str(artifact)  # binary data: at its first NUL
            assert proc.stderr.startswith(f"{where}: error[F003]: neither a corral policy nor an AppArmor profile: this is "), proc.stderr
    proc = corral("diff", str(docker), str(out / "agent-http2.landlock.json"))
    assert proc.returncode == 2 and "seccomp profile (OCI/Docker JSON)" in proc.stderr and "corral import docker-seccomp" in proc.stderr
    assert corral("diff", AGENT, str(out / "agent-http2.apparmor")).returncode in (0, 1)  # a policy and a profile still compare


def test_explain_refuses_a_fifo_and_a_device_without_reading_them(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        proc = subprocess.run([sys.executable, "-m", "corral.cli", "explain", path], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "error[F001]: not a regular file" in proc.stderr, proc.stderr


@pytest.mark.parametrize("fmt", ["apparmor", "docker-seccomp", "bane"])
def test_import_refuses_a_fifo_and_a_device_without_reading_them(tmp_path: Path, fmt: str) -> None:
    """import read /dev/zero until memory ran out; a FIFO would hang it."""
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in ((str(fifo), "a FIFO"), ("/dev/zero", "a character device")):
        proc = subprocess.run([sys.executable, "-m", "corral.cli", "import", fmt, path], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and f"{path}: error[F001]: not a regular file ({what})" in proc.stderr, proc.stderr


# -- diff --------------------------------------------------------------------------


def test_diff_of_a_policy_with_itself_is_empty() -> None:
    proc = corral("diff", AGENT, AGENT)
    assert proc.returncode == 0 and "no permission changed" in proc.stdout


def test_diff_catches_widening(tmp_path: Path) -> None:
    old = tmp_path / "old.toml"
    old.write_text('[Filesystem]\nReadOnly = ["/srv/**"]\nDeny = ["/srv/secret/**"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\nSocketOptions = ["tcp_nodelay"]\n')
    new = tmp_path / "new.toml"
    new.write_text('[Filesystem]\nReadOnly = ["/srv/**", "/srv/a/b"]\nWritable = ["/srv/out/**"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n[Misc]\nSyscalls = ["setsockopt"]\n[User]\nCapabilities = ["net_raw"]\n')
    delta = diff(view(str(old)), view(str(new)))
    assert delta.widens
    assert "/srv/a/b r" not in delta.added["files"]  # /srv/** already covered it
    assert {"/srv/out/** w", "deny /srv/secret/** dropped"} <= set(delta.added["files"])
    assert delta.added["capabilities"] == ["net_raw"]
    assert "setsockopt: argument filter dropped" in delta.added["system calls"]
    back = corral("diff", str(new), str(old))
    assert back.returncode == 0 and "NEW grants nothing OLD did not" in back.stdout  # narrowing passes the gate


def test_diff_policy_against_its_compiled_profile(tmp_path: Path) -> None:
    assert corral("compile", AGENT, "-t", "apparmor", "-o", str(tmp_path), "--allow-unenforced").returncode == 0
    proc = corral("diff", "--json", AGENT, str(tmp_path / "agent-http2.apparmor"))
    delta = json.loads(proc.stdout)
    assert proc.returncode == 1 and "files" not in delta["added"]  # the profile grants exactly the policy's files
    assert delta["added"]["system calls"] == ["<every system call>"]
    assert delta["added"]["ports"] == ["any TCP port (AppArmor 3 rules name no ports)"]


# -- import -------------------------------------------------------------------------


def test_import_docker_seccomp_round_trip() -> None:
    """import then compile gives the same unconditional allow list, for every
    name this libseccomp knows on x86_64 or aarch64; the report names the rest."""
    from corral import _seccomp

    docker_path = reference(*DOCKER_DEFAULT)
    text, imported = import_file("docker-seccomp", str(docker_path))
    ir = lower(load_policy_text(text, "docker.toml"))
    ours = {n for e in to_oci(ir)["syscalls"] if e["action"] == "SCMP_ACT_ALLOW" and "args" not in e for n in e["names"]}
    ours |= {r.name for r in ir.syscalls if r.narrowed_by}  # allowed whole but for a guard (TIOCSTI, MSG_FASTOPEN, other pids)
    docker = json.loads(docker_path.read_text())
    theirs = {
        n for e in docker["syscalls"]
        if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args") and not (e.get("includes") or {}).get("caps")
        and not ((e.get("includes") or {}).get("arches") and "amd64" not in e["includes"]["arches"])
        and not ((e.get("excludes") or {}).get("arches") and "amd64" in e["excludes"]["arches"])
        for n in e["names"]
    }  # fmt: skip
    assert ours == {n for n in theirs if _seccomp.is_known(n)}
    skipped = {n for n in theirs if not _seccomp.is_known(n)}
    assert all(any(repr(n) in r for r in imported.report) for n in skipped)
    assert any("allowed only with capabilities" in r for r in imported.report)
    clone = next(r for r in ir.syscalls if r.name == "clone")
    assert clone.alternatives  # Docker's namespace-flag filter survived as Args


def test_import_apparmor_round_trip(tmp_path: Path) -> None:
    """import then compile: the real parser accepts it, and every permission
    the compiled profile adds over the original is explained in the report."""
    out = tmp_path / "ping.toml"
    proc = corral("import", "apparmor", "/etc/apparmor.d/bin.ping", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert corral("compile", str(out), "-t", "apparmor", "-o", str(tmp_path), "--allow-unenforced").returncode == 0
    compiled = tmp_path / "ping.apparmor"
    assert apparmor_compile(compiled.read_bytes(), tmp_path).returncode == 0
    delta = diff(view("/etc/apparmor.d/bin.ping"), view(str(compiled)))
    report = proc.stderr
    for item in delta.added.get("files", []):
        assert item.rsplit(" ", 1)[0] in report, item
    for item in delta.added.get("network", []):
        assert item.split()[0] in report, item
    assert "capabilities" not in delta.added
    for kind in ("dbus", "signal", "unix"):
        assert f"({kind} rules have no corral equivalent yet)" in report


def test_import_bane(tmp_path: Path) -> None:
    bane = tmp_path / "nginx.toml"
    bane.write_text(
        'Name = "nginx-sample"\n[Filesystem]\nReadOnlyPaths = ["/etc/nginx/**"]\nLogOnWritePaths = ["/**"]\n'
        'WritablePaths = ["/var/run/nginx.pid"]\nAllowExec = ["/usr/sbin/nginx"]\nDenyExec = ["/bin/dash", "/bin/sh"]\n'
        '[Capabilities]\nAllow = ["chown", "dac_override", "setuid", "setgid", "net_bind_service"]\n'
        '[Network]\nRaw = false\nPacket = false\nProtocols = ["tcp", "udp", "icmp"]\n'
    )
    proc = corral("import", "bane", str(bane))
    assert proc.returncode == 0, proc.stderr
    policy = load_policy_text(proc.stdout, "nginx.toml")
    assert [i.value for i in policy.get(schema.FS_EXEC)] == ["/usr/sbin/nginx"]
    assert [i.value for i in policy.get(schema.FS_DENY)] == ["/bin/dash", "/bin/sh"]
    assert [i.value for i in policy.get(schema.USER_CAPABILITIES)] == ["chown", "dac_override", "setuid", "setgid", "net_bind_service"]
    assert "bane profiles start from `file,`" in proc.stderr


def test_an_imported_write_exec_overlap_is_kept_in_words(tmp_path: Path) -> None:
    """The artifact let /srv/app/bin/tool be written and run: the policy
    keeps that, in AllowWriteExec (else it would not load: W^X, E022), and
    the report says it."""
    bane = tmp_path / "app.toml"
    bane.write_text('Name = "app"\n[Filesystem]\nWritablePaths = ["/srv/app/**"]\nAllowExec = ["/srv/app/bin/tool", "/usr/bin/env"]\n')
    proc = corral("import", "bane", str(bane))
    assert proc.returncode == 0, proc.stderr
    policy = load_policy_text(proc.stdout, "app.toml")
    assert [i.value for i in policy.get(schema.FS_ALLOW_WRITE_EXEC)] == ["/srv/app/bin/tool"]
    assert "/srv/app/bin/tool is executable and /srv/app/** makes it writable (W^X): kept, in AllowWriteExec" in proc.stdout + proc.stderr
    assert lower(policy).write_exec == ("/srv/app/bin/tool",)


def test_import_bad_input_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    proc = corral("import", "docker-seccomp", str(bad))
    assert proc.returncode == 2 and proc.stderr.startswith(f"{bad}:1:3: error[F002]: invalid JSON: Expecting property name"), proc.stderr


def test_explain_groups_system_calls_by_family() -> None:
    data = summary(view(AGENT))
    fam = {row["flag"]: (row["allowed"], row["of"]) for row in data["system_call_families"]}  # type: ignore[union-attr]
    assert fam["malloc"] == (9, 9) and fam["exec"] == (2, 2)
    assert "ptrace" not in fam  # denied: not a family this policy allows


def test_import_apparmor_keeps_named_exec_profiles(tmp_path: Path) -> None:
    src = tmp_path / "p.apparmor"
    src.write_text("abi <abi/3.0>,\nprofile p {\n  /usr/bin/helper px -> helper,\n  /usr/bin/tool ix,\n  /usr/bin/x Ux,\n}\n")
    text, imported = import_file("apparmor", str(src))
    policy = load_policy_text(text, "p.toml")
    assert [(i.value, i.parsed.profile) for i in policy.get(schema.FS_EXEC_PROFILES)] == [("/usr/bin/helper", "helper")]
    assert [i.value for i in policy.get(schema.FS_EXEC)] == ["/usr/bin/tool", "/usr/bin/x"]
    assert any("exec mode Ux became ix" in r for r in imported.report)
