"""The enforcement matrix: probes under five policies, each asserting what
the kernel really answered (EACCES from Landlock, EPERM from seccomp or
missing capabilities) or that the operation was permitted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from corral.lower import lower
from corral.policy import load_policy, load_policy_text
from corral.sandbox import plan as plans
from corral.sandbox.probes import run_probe

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the matrix includes root-only outcomes (raw sockets, setuid)")

DENY_DIR = Path("/srv/corral-matrix")


def _plan_of_text(text: str) -> dict:
    return plans.build(lower(load_policy_text(text, "matrix.toml")), [])


def _plan_of_file(path: Path) -> dict:
    """The example's plan, from a copy outside the checkout: a checkout in
    /tmp lies inside what proposal.toml's tmp flag makes writable, and run
    refuses a policy file the program could rewrite (test_persistence)."""
    copy = DENY_DIR.parent / "corral-matrix-policies" / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)
    return plans.build(lower(load_policy(copy)), [str(copy)])


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    (DENY_DIR / "public").mkdir(parents=True, exist_ok=True)
    (DENY_DIR / "secret").mkdir(exist_ok=True)
    (DENY_DIR / "data").mkdir(exist_ok=True)
    for name in ("public/a.txt", "public/b.key", "secret/key", "top.txt"):
        (DENY_DIR / name).write_text("x\n")
    Path("/run/agent-http2").mkdir(exist_ok=True)
    return {
        "empty": _plan_of_text(""),
        "agent": _plan_of_file(ROOT / "examples/agent-http2.toml"),
        "deny-inside-allow": _plan_of_text(
            f'[Filesystem]\nWritable = ["{DENY_DIR}/**"]\nDeny = ["{DENY_DIR}/secret/**", "{DENY_DIR}/public/*.key"]\n'
            '[Runtime]\nFlags = ["stdio"]\n'
        ),
        "proposal": _plan_of_file(ROOT / "examples/proposal.toml"),
        "nodejs-web": _plan_of_file(ROOT / "examples/nodejs-web.toml"),
        "signal-outside": _plan_of_text('[Runtime]\nFlags = ["stdio", "proc", "signal-outside"]\n'),
    }


D = DENY_DIR
MATRIX = [
    # the empty policy allows nothing
    ("empty", "read", {"Path": "/etc/hostname"}, "deny", "EPERM"),
    ("empty", "list", {"Path": "/"}, "deny", "EPERM"),
    ("empty", "write", {"Path": "/run/corral-empty-probe"}, "deny", "EPERM"),
    ("empty", "exec", {"Path": "/bin/true"}, "deny", "EPERM"),
    ("empty", "connect", {"Port": 443}, "deny", "EPERM"),
    ("empty", "socket", {"Family": "unix", "Type": "stream"}, "deny", "EPERM"),
    ("empty", "raw-socket", {}, "deny", "EPERM"),
    ("empty", "ptrace", {}, "deny", "EPERM"),
    ("empty", "setuid", {}, "deny", "EPERM"),
    ("empty", "kill", {}, "deny", "EPERM"),
    # the HTTP/2 agent
    ("agent", "write", {"Path": "/tmp/corral-matrix-probe"}, "deny", "EACCES"),
    ("agent", "write", {"Path": "/var/tmp/corral-matrix-probe"}, "deny", "EACCES"),
    ("agent", "write", {"Path": "/run/agent-http2/matrix-probe"}, "allow", ""),
    ("agent", "read", {"Path": "/etc/resolv.conf"}, "allow", ""),
    ("agent", "read", {"Path": "/etc/shadow"}, "deny", "EACCES"),
    ("agent", "read", {"Path": "/root/.bashrc"}, "deny", "EACCES"),
    ("agent", "connect", {"Port": 443}, "deny", "EACCES"),  # 127.0.0.1 is not api.example.com: the egress supervisor refuses
    ("agent", "connect", {"Port": 53}, "allow", ""),
    ("agent", "connect", {"Port": 22}, "deny", "EACCES"),
    ("agent", "bind", {"Port": 9999}, "deny", "EPERM"),  # no bind(2) at all: outbound only
    ("agent", "raw-socket", {}, "deny", "EPERM"),
    ("agent", "socket", {"Family": "packet", "Type": "raw"}, "deny", "EPERM"),
    ("agent", "setsockopt", {"Option": "tcp_keepidle"}, "allow", ""),
    ("agent", "setsockopt", {"Option": "so_debug"}, "deny", "EPERM"),
    ("agent", "setsockopt", {"Option": "ip_ttl"}, "deny", "EPERM"),
    ("agent", "exec", {"Path": "/bin/sh"}, "deny", "EACCES"),
    ("agent", "mount", {}, "deny", "EPERM"),
    ("agent", "ptrace", {}, "deny", "EPERM"),
    # deny inside allow: Landlock grants are split around the denied paths
    ("deny-inside-allow", "read", {"Path": f"{D}/public/a.txt"}, "allow", ""),
    ("deny-inside-allow", "write", {"Path": f"{D}/data/new.txt"}, "allow", ""),
    # documented narrowing: a directory split around a deny takes no new entries
    ("deny-inside-allow", "write", {"Path": f"{D}/public/new.txt"}, "deny", "EACCES"),
    ("deny-inside-allow", "read", {"Path": f"{D}/top.txt"}, "allow", ""),
    ("deny-inside-allow", "read", {"Path": f"{D}/secret/key"}, "deny", "EACCES"),
    ("deny-inside-allow", "write", {"Path": f"{D}/secret/new"}, "deny", "EACCES"),
    ("deny-inside-allow", "read", {"Path": f"{D}/public/b.key"}, "deny", "EACCES"),
    ("deny-inside-allow", "list", {"Path": f"{D}/secret"}, "deny", "EACCES"),
    # the proposal's example
    ("proposal", "raw-socket", {}, "allow", ""),
    ("proposal", "create", {"Path": "/tmp/corral-matrix-probe"}, "allow", ""),
    # ... but the proposal grants no write(2) at all: it has no stdio flag
    ("proposal", "write", {"Path": "/tmp/corral-matrix-probe"}, "deny", "EPERM"),
    ("proposal", "read", {"Path": "/sys/kernel/osrelease"}, "allow", ""),
    ("proposal", "read", {"Path": "/etc/passwd"}, "deny", "EACCES"),
    ("proposal", "connect", {"Port": 53}, "allow", ""),
    ("proposal", "connect", {"Port": 443}, "deny", "EACCES"),
    ("proposal", "setuid", {}, "allow", ""),
    ("proposal", "userns", {}, "deny", "EPERM"),
    ("proposal", "exec", {"Path": "/bin/true"}, "deny", "EPERM"),
    # a Node.js web server
    ("nodejs-web", "bind", {"Port": 8080}, "allow", ""),
    ("nodejs-web", "bind", {"Port": 8081}, "deny", "EACCES"),
    ("nodejs-web", "connect", {"Port": 5432}, "allow", ""),
    ("nodejs-web", "connect", {"Port": 25}, "deny", "EACCES"),
    ("nodejs-web", "setsockopt", {"Option": "so_reuseaddr"}, "allow", ""),
    ("nodejs-web", "setsockopt", {"Option": "tcp_cork"}, "deny", "EPERM"),
    ("nodejs-web", "socket", {"Family": "unix", "Type": "stream"}, "allow", ""),
    ("nodejs-web", "raw-socket", {}, "deny", "EPERM"),
    ("nodejs-web", "exec", {"Path": "/bin/sh"}, "deny", "EACCES"),
    ("nodejs-web", "read", {"Path": "/etc/shadow"}, "deny", "EACCES"),
    # signals and limits stay inside the sandbox unless a flag says otherwise
    ("nodejs-web", "kill", {}, "deny", "EPERM"),
    ("signal-outside", "kill", {}, "allow", ""),
]


@pytest.mark.parametrize(("policy", "probe", "params", "verdict", "err"), MATRIX, ids=[f"{m[0]}:{m[1]}:{'/'.join(map(str, m[2].values()))}" for m in MATRIX])
def test_probe(policies: dict[str, dict], policy: str, probe: str, params: dict, verdict: str, err: str) -> None:
    if policy == "proposal" and params.get("Path", "").startswith("/tmp/") and str(ROOT).startswith("/tmp/"):
        # corral itself lies under /tmp (a CI clone): run keeps its code out
        # of the tmp flag's write grant by splitting /tmp, which then takes
        # no new entries, and answers Landlock's EACCES (sandbox/grants.py)
        verdict, err = "deny", "EACCES"
    outcome = run_probe(policies[policy], probe, params)
    assert outcome.verdict == verdict, outcome.detail
    if verdict == "deny":
        assert outcome.detail == err


def test_matrix_size() -> None:
    assert len(MATRIX) >= 40 and len({m[0] for m in MATRIX}) >= 5
