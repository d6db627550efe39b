"""Differential enforcement: the same probe matrix under `corral run` on the
host (Landlock + seccomp + capabilities) and under the compiled AppArmor
profile in the VM (Debian's kernel, AppArmor on), each verdict compared with
the policy's intent.

    .venv/bin/python tests/vm/differential.py [--markdown FILE] [--json FILE]

A verdict that differs from the intent is *declared* when the coverage
report of that backend (corral.compile.coverage_of: what `corral compile`
and `corral run --dry-run` print) rates a rule concerning the operation
approximate or not enforced; otherwise it is an *undeclared disagreement*,
which means a backend or its coverage report is wrong. The test in
test_differential.py requires zero of those.

Both sides run in a private mount, network and UTS namespace with tmpfs on
/tmp, /run, /srv and /var/log and the same layout made by one setup script,
so the paths are equal, nothing on the host is touched and parallel runs do
not collide. The probe is diff_probe.c, static: one process per policy.

Intent is written here by hand, per operation, from the language's rules
(README, docs/policy-language.md); paths use AppArmor's globs, so where
corral's glob semantics and the kernel's might differ the intent is the
kernel's (``DIR/*`` does not match ``DIR/`` itself nor ``DIR/sub/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))
    from vm.vm import CACHE, boot  # noqa: E402
else:
    from .vm import CACHE, boot

from corral import startup  # noqa: E402
from corral.backends import Level  # noqa: E402
from corral.compile import RuleCoverage, coverage_of  # noqa: E402
from corral.ir import CapabilityRule, FileRule, PortRule, SocketRule  # noqa: E402
from corral.lower import lower  # noqa: E402
from corral.policy import globs, load_policy  # noqa: E402

A = "/srv/arena"
#: The layout every policy's operations run against, made unconfined in a
#: fresh mount namespace (same script on the host and in the guest).
_FRESH = ("/tmp", "/run", "/srv", "/var/log", "/var/tmp", "/usr/local/bin")


def _carry_checkout() -> tuple[str, str]:
    """Shell lines that carry the checkout (its venv runs corral) through the
    fresh tmpfs mounts when it lies under one of them (a CI clone in /tmp)."""
    root = str(ROOT)
    if not any(root.startswith(d + "/") for d in _FRESH):
        return "", ""
    quoted = shlex.quote(root)
    return (f"mount -t tmpfs tmpfs /mnt; mkdir /mnt/checkout; mount --bind {quoted} /mnt/checkout",
            f"mkdir -p {quoted}; mount --move /mnt/checkout {quoted}")


_CARRY, _PUT_BACK = _carry_checkout()
SETUP = f"""
set -e
{_CARRY}
for d in {" ".join(_FRESH)}; do mount -t tmpfs -o mode=755 tmpfs $d; done
{_PUT_BACK}
echo hostname > /run/.hostname; mount --bind /run/.hostname /etc/hostname
ip link set lo up 2>/dev/null || busybox ip link set lo up
mkdir -p {A}/ro/sub {A}/ro/a {A}/ro/b {A}/ro/c1 {A}/rw/sub {A}/rw/secret {A}/other {A}/bin {A}/owned
for f in {A}/ro/f {A}/ro/sub/g {A}/ro/secret {A}/ro/x.txt {A}/ro/x.dat {A}/ro/a/f {A}/ro/b/f {A}/ro/c1/f \\
         {A}/rw/f {A}/rw/g {A}/rw/sub/f {A}/rw/secret/key {A}/other/f; do echo data > $f; done
echo data > {A}/owned/f; chown 1:1 {A}/owned/f; chmod 000 {A}/owned/f
cp "$PROBE" {A}/bin/tool; cp "$PROBE" {A}/bin/other; cp "$PROBE" {A}/bin/profiled; cp "$PROBE" /usr/local/bin/agent
mkdir -p /run/agent-http2 /run/nodejs-web /var/log/nodejs-web /srv/app /var/tmp/corral-diff
echo data > /srv/app/index.js; echo data > /run/agent-http2/state; echo data > /var/log/nodejs-web/log
"$PROBE" bind-unix:{A}/rw/s.sock bind-unix:{A}/rw/secret/s.sock bind-unix:{A}/other/s.sock >/dev/null
"""


@dataclass
class Case:
    """One policy and its operations, each with the intended verdict."""

    name: str
    policy: str                      # TOML text, or "@examples/NAME.toml"
    ops: list[tuple[str, str]]       # (probe spec, "allow" | "deny")
    extra_profiles: dict[str, str] = field(default_factory=dict)  # AppArmor profiles the policy names


def _common_denied() -> list[tuple[str, str]]:
    """What no policy below grants: the same attacks everywhere."""
    return [
        ("read:/etc/shadow", "deny"),
        (f"read:{A}/other/f", "deny"),
        (f"write:{A}/other/f", "deny"),
        (f"create:{A}/other/new", "deny"),
        (f"unlink:{A}/other/f", "deny"),
        (f"mkdir:{A}/other/d", "deny"),
        (f"exec:{A}/bin/other", "deny"),
        ("exec:/bin/sh", "deny"),
        (f"mmap-exec:{A}/other/f", "deny"),
        (f"connect-unix:{A}/other/s.sock", "deny"),
        ("socket:packet-raw", "deny"),
        (f"cap-chown:{A}/owned/f", "deny"),
        ("cap-sys_chroot:/", "deny"),
        ("cap-sys_admin:x", "deny"),
        (f"cap-dac_override:{A}/owned/f", "deny"),
    ]


PROBE_EXEC = f'Exec = ["{A}/bin/diff_probe"]'

CASES = [
    Case("deny-inside", f"""
Name = "diff-deny-inside"
Extends = ["base"]
[Filesystem]
ReadOnly = ["{A}/ro/", "{A}/ro/**"]
Writable = ["{A}/rw/", "{A}/rw/**"]
Deny = ["{A}/rw/secret/**", "{A}/ro/secret"]
{PROBE_EXEC}
""", [
        (f"read:{A}/ro/f", "allow"), (f"read:{A}/ro/sub/g", "allow"), (f"list:{A}/ro/", "allow"),
        (f"list:{A}/ro/sub/", "allow"), (f"read:{A}/ro/secret", "deny"), (f"write:{A}/ro/f", "deny"),
        (f"create:{A}/ro/new", "deny"), (f"unlink:{A}/ro/f", "deny"), (f"mkdir:{A}/ro/d", "deny"),
        (f"read:{A}/rw/f", "allow"), (f"write:{A}/rw/f", "allow"), (f"create:{A}/rw/new", "allow"),
        (f"mkdir:{A}/rw/d", "allow"), (f"rename:{A}/rw/g,{A}/rw/g2", "allow"),
        (f"list:{A}/rw/", "allow"), (f"read:{A}/rw/sub/f", "allow"), (f"create:{A}/rw/sub/n", "allow"), (f"unlink:{A}/rw/sub/f", "allow"),
        (f"read:{A}/rw/secret/key", "deny"), (f"write:{A}/rw/secret/key", "deny"),
        (f"create:{A}/rw/secret/new", "deny"), (f"unlink:{A}/rw/secret/key", "deny"),
        (f"list:{A}/rw/secret/", "deny"), (f"rename:{A}/rw/f,{A}/rw/secret/f", "deny"),
        (f"link:{A}/rw/f,{A}/rw/hardlink", "allow"), (f"link:{A}/ro/f,{A}/rw/ro-link", "deny"),
        (f"link:{A}/rw/secret/key,{A}/rw/key-link", "deny"),
        (f"connect-unix:{A}/rw/s.sock", "deny"),  # no unix protocol in this policy
        (f"mmap-exec:{A}/ro/f", "deny"),
        *_common_denied(),
    ]),
    Case("globs", f"""
Name = "diff-globs"
Extends = ["base"]
[Filesystem]
ReadOnly = ["{A}/ro/*.txt", "{A}/ro/{{a,b}}/**", "{A}/ro/c?/*"]
Writable = ["{A}/rw/*"]
{PROBE_EXEC}
""", [
        (f"read:{A}/ro/x.txt", "allow"), (f"read:{A}/ro/x.dat", "deny"), (f"read:{A}/ro/a/f", "allow"),
        (f"read:{A}/ro/b/f", "allow"), (f"read:{A}/ro/c1/f", "allow"), (f"read:{A}/ro/f", "deny"),
        (f"read:{A}/ro/sub/g", "deny"), (f"write:{A}/ro/x.txt", "deny"), (f"write:{A}/ro/a/f", "deny"),
        # AppArmor globs: DIR/** and DIR/* never match DIR/ itself, DIR/* not DIR/sub/
        (f"list:{A}/ro/a/", "deny"), (f"list:{A}/ro/", "deny"),
        (f"read:{A}/rw/f", "allow"), (f"write:{A}/rw/f", "allow"), (f"create:{A}/rw/new", "allow"),
        (f"unlink:{A}/rw/new", "allow"), (f"list:{A}/rw/", "deny"), (f"mkdir:{A}/rw/d", "deny"),
        (f"read:{A}/rw/sub/f", "deny"), (f"create:{A}/rw/sub/n", "deny"),
        *_common_denied(),
    ]),
    Case("exec", f"""
Name = "diff-exec"
Extends = ["base"]
[Filesystem]
ReadOnly = ["{A}/ro/**"]
Exec = ["{A}/bin/diff_probe", "{A}/bin/tool"]
ExecProfiles = {{ "{A}/bin/profiled" = "diff-exec-child" }}
[Runtime]
Flags = ["proc"]
""", [
        (f"exec:{A}/bin/tool", "allow"), (f"exec:{A}/bin/profiled", "allow"), (f"read:{A}/bin/tool", "allow"),
        (f"mmap-exec:{A}/bin/tool", "allow"), (f"mmap-exec:{A}/ro/f", "deny"), (f"exec:{A}/ro/f", "deny"),
        (f"read:{A}/ro/f", "allow"), (f"write:{A}/bin/tool", "deny"), (f"create:{A}/bin/new", "deny"),
        ("exec:/usr/bin/true", "deny"), ("read:/usr/bin/true", "deny"),
        *_common_denied(),
    ], extra_profiles={"diff-exec-child": "abi <abi/3.0>,\nprofile diff-exec-child {\n  /srv/arena/bin/profiled mr,\n}\n"}),
    Case("sockets", f"""
Name = "diff-sockets"
Extends = ["base"]
[Networking]
Flags = ["outgoing", "incoming"]
Protocols = ["tcp", "unix"]
Connect = ["tcp:443"]
Bind = ["tcp:8080"]
[Filesystem]
Writable = ["{A}/rw/", "{A}/rw/**"]
Deny = ["{A}/rw/secret/**"]
{PROBE_EXEC}
""", [
        ("socket:inet-stream", "allow"), ("socket:inet6-stream", "allow"), ("socket:unix-stream", "allow"),
        ("socket:inet-dgram", "deny"), ("socket:netlink-raw", "deny"), ("socket:unix-dgram", "allow"),  # unix: every type
        ("connect-tcp:443", "allow"), ("connect-tcp:8443", "deny"), ("bind-tcp:8080", "allow"),
        ("bind-tcp:9090", "deny"), ("connect-udp:53", "deny"), ("cap-net_raw:x", "deny"),
        (f"connect-unix:{A}/rw/s.sock", "allow"), (f"bind-unix:{A}/rw/new.sock", "allow"),
        (f"connect-unix:{A}/rw/secret/s.sock", "deny"), (f"bind-unix:{A}/rw/secret/new.sock", "deny"),
        ("cap-net_bind_service:80", "deny"),
        *_common_denied(),
    ]),
    Case("capabilities", f"""
Name = "diff-capabilities"
Extends = ["base"]
[Networking]
Flags = ["incoming"]
Protocols = ["tcp"]
Bind = ["tcp:80"]
[Filesystem]
Flags = ["fattr"]
Writable = ["{A}/owned/", "{A}/owned/**"]
{PROBE_EXEC}
[User]
Capabilities = ["chown", "net_bind_service", "fowner", "dac_override"]
DenyCapabilities = ["net_raw", "sys_admin"]
[Misc]
Syscalls = ["chown", "fchownat", "chroot", "sethostname"]
""", [
        (f"cap-chown:{A}/owned/f", "allow"), ("cap-net_bind_service:80", "allow"), (f"cap-fowner:{A}/owned/f", "allow"),
        (f"cap-dac_override:{A}/owned/f", "allow"), ("cap-net_raw:x", "deny"), ("cap-sys_admin:x", "deny"),
        ("cap-sys_chroot:/", "deny"), ("bind-tcp:8080", "deny"), (f"read:{A}/owned/f", "allow"),
        (f"write:{A}/owned/f", "allow"),
        *[op for op in _common_denied() if not op[0].startswith(("cap-chown", "cap-dac_override", "cap-sys"))],
    ]),
    Case("agent-http2", "@examples/agent-http2.toml", [
        ("read:/etc/ssl/certs/ca-certificates.crt", "allow"), ("list:/etc/ssl/certs/", "allow"),
        ("read:/run/agent-http2/state", "allow"), ("write:/run/agent-http2/state", "allow"),
        ("create:/run/agent-http2/new", "allow"), ("mkdir:/run/agent-http2/d", "allow"),
        ("rename:/run/agent-http2/new,/run/agent-http2/new2", "allow"), ("unlink:/run/agent-http2/new2", "allow"),
        ("create:/tmp/x", "deny"), ("create:/var/tmp/corral-diff/x", "deny"), ("write:/etc/hostname", "deny"),
        ("socket:inet-stream", "allow"), ("connect-tcp:443", "allow"), ("connect-tcp:8080", "deny"),
        ("bind-tcp:8443", "deny"), ("cap-net_raw:x", "deny"), ("socket:inet-dgram", "allow"),
        ("exec:/usr/local/bin/agent", "allow"),
        *_common_denied(),
    ]),
    Case("nodejs-web", "@examples/nodejs-web.toml", [
        ("read:/srv/app/index.js", "allow"), ("write:/srv/app/index.js", "deny"), ("create:/srv/app/new", "deny"),
        ("read:/var/log/nodejs-web/log", "allow"), ("write:/var/log/nodejs-web/log", "allow"),
        ("create:/var/log/nodejs-web/new", "allow"), ("create:/run/nodejs-web/pid", "allow"),
        ("create:/tmp/x", "deny"), ("bind-tcp:8080", "allow"), ("bind-tcp:8081", "deny"),
        ("connect-tcp:5432", "allow"), ("connect-tcp:443", "allow"), ("connect-tcp:22", "deny"),
        ("socket:unix-stream", "allow"), ("socket:netlink-raw", "allow"), ("exec:/usr/bin/bash", "deny"),
        ("cap-net_bind_service:80", "deny"),
        *_common_denied(),
    ]),
    Case("proposal", "@examples/proposal.toml", [
        ("read:/sys/kernel/mm/transparent_hugepage/enabled", "allow"), ("write:/etc/hostname", "deny"),
        ("create:/tmp/x", "allow"), ("socket:inet-stream", "allow"), ("socket:inet-dgram", "allow"),
        ("cap-net_raw:x", "allow"),
        *_common_denied(),
    ]),
]

DENIED = ("errno=EACCES", "errno=EPERM")


def classify(op: str, answer: str) -> str:
    """The kernel's answer as a verdict: allow, deny, or error:ERRNO when
    the operation failed for a reason that is not a sandbox's (a broken
    layout, which must be fixed rather than counted)."""
    if answer == "ok":
        return "allow"
    if answer in DENIED or (answer == "errno=EXDEV" and op.startswith(("link:", "rename:"))):
        return "deny"  # EXDEV: Landlock's refusal to link or move across directories it grants no refer on
    if answer == "errno=ECONNREFUSED" and op.startswith(("connect-tcp", "connect-unix", "connect-udp")):
        return "allow"
    return f"error:{answer}"


def build_probe(out: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc is needed for the probe: run `bash dev.sh setup`")
    probe = out / "diff_probe"
    subprocess.run([gcc, "-static", "-O1", "-Wall", "-o", str(probe), str(HERE / "diff_probe.c")], check=True)
    return probe


def _policy_file(case: Case, work: Path) -> Path:
    """The case's policy; a shipped example is extended by a wrapper that
    only adds the probe to Exec (so that it may start: `corral run` execs
    it, and the AppArmor profile must let it map itself)."""
    if case.policy.startswith("@"):
        example = ROOT / case.policy[1:]
        text = f'Name = "diff-{case.name}"\nExtends = ["{example}"]\n[Filesystem]\n{PROBE_EXEC}\n'
    else:
        text = case.policy
    path = work / f"{case.name}.toml"
    path.write_text(text)
    return path


def _coverage(policy: Path) -> dict[str, list[RuleCoverage]]:
    ir = lower(load_policy(str(policy)))
    return {"run": coverage_of(ir, ["seccomp", "landlock", "capabilities"]), "apparmor": coverage_of(ir, ["apparmor"])}


def _op_paths(op: str) -> list[str]:
    kind, _, arg = op.partition(":")
    if kind.startswith(("socket", "connect-tcp", "bind-tcp", "connect-udp")) or kind.startswith("cap-"):
        return []
    return arg.split(",")


def _op_sockets(kind: str, arg: str) -> set[tuple[str, str]]:
    """The (family, type) pairs an operation uses."""
    if kind == "socket":
        family, _, type_ = arg.partition("-")
        return {(family, type_)}
    if kind in ("connect-unix", "bind-unix"):
        return {("unix", "stream")}
    if kind in ("connect-tcp", "bind-tcp", "cap-net_bind_service"):
        return {("inet", "stream")}
    if kind == "connect-udp":
        return {("inet", "dgram")}
    if kind == "cap-net_raw":
        return {("inet", "raw")}
    return set()


def _file_rule_concerns(glob: str, path: str) -> bool:
    """Whether a rule's glob bears on an operation on PATH: it matches PATH,
    or PATH lies in the directory the glob starts in (what a backend that
    cannot express the glob grants or splits instead)."""
    if globs.matches(glob, path) or globs.matches(glob, path.rstrip("/") + "/"):
        return True
    if not globs.has_glob(glob):  # a literal directory is granted beneath
        return glob.endswith("/") and path.startswith(glob.replace("\\", ""))
    start = globs.literal_prefix(glob)
    return (path.rstrip("/") + "/").startswith(start[: start.rfind("/") + 1])


def declaration(op: str, coverage: list[RuleCoverage], backend: str) -> str:
    """The coverage entries that declare this backend's verdict on OP may
    differ from the intent: rules concerning OP rated below exact, with
    their notes; empty when nothing declares it."""
    targets = ["seccomp", "landlock", "capabilities"] if backend == "run" else ["apparmor"]
    kind, _, arg = op.partition(":")
    notes = []
    for rc in coverage:
        rule = rc.rule
        # a unix socket's peer path is a backend's own gap (Landlock's resolve_unix, AppArmor's af_unix), whatever
        # else enforces the family exactly; otherwise the best level over the backend's mechanisms counts
        unix_gap = kind in ("connect-unix", "bind-unix") and isinstance(rule, SocketRule) and any(
            c.level < Level.EXACT and "unix" in c.note for t in targets if (c := rc.selected.get(t)))
        if rc.best == Level.EXACT and not unix_gap:
            continue
        concerns = False
        if isinstance(rule, FileRule):
            concerns = any(_file_rule_concerns(alt, p) for p in _op_paths(op) for alt in globs.expand(rule.path))
        elif isinstance(rule, PortRule):
            concerns = kind in ("connect-tcp", "bind-tcp", "connect-udp", "cap-net_bind_service")
        elif isinstance(rule, SocketRule):
            concerns = (rule.family, rule.type) in _op_sockets(kind, arg)
        elif isinstance(rule, CapabilityRule):
            concerns = kind.startswith("cap-") and kind[4:] == rule.name
        if concerns:
            why = "; ".join(f"{t}: {c.note}" for t in targets if (c := rc.selected.get(t)) and c.note) or "not enforced"
            notes.append(f"{rc.describe()} ({why})")
    return " | ".join(notes)


def _ops_args(case: Case) -> str:
    return " ".join(shlex.quote(op) for op, _ in case.ops)


def run_host(cases: list[Case], work: Path, probe: Path) -> dict[str, str]:
    """Every case under `corral run` (as root) in a private namespace."""
    corral = [sys.executable, "-I", "-m", "corral.cli", "run", "-q", "--best-effort"]
    out: dict[str, str] = {}
    for case in cases:
        script = (f"export PROBE={shlex.quote(str(probe))}\n{SETUP}\ncp \"$PROBE\" {A}/bin/diff_probe\n"
                  f"exec {shlex.join(corral)} {shlex.quote(str(work / (case.name + '.toml')))} -- {A}/bin/diff_probe {_ops_args(case)}\n")
        proc = subprocess.run(["unshare", "-mnu", "sh", "-c", script], capture_output=True, text=True, timeout=300, cwd="/")
        out[case.name] = proc.stdout + (f"\n#stderr {proc.stderr}" if proc.returncode else "")
    return out


def run_guest(cases: list[Case], work: Path, probe: Path) -> tuple[dict[str, str], str]:
    """Every case under its AppArmor profile, in one boot."""
    lines = ["exec 2>&1", "mkdir -p results", f"apparmor_parser -r --skip-cache {work}/profiles/*.apparmor > parser.log 2>&1 || cat parser.log"]
    for case in cases:
        name = f"diff-{case.name}"
        inner = (f'export PROBE={probe}\n{SETUP}\ncp "$PROBE" {A}/bin/diff_probe\n'
                 f'echo "exec {name}" > /proc/self/attr/exec\nexec {A}/bin/diff_probe {_ops_args(case)}\n')
        lines.append(f"unshare -mnu sh -c {shlex.quote(inner)} > results/{case.name}.txt 2>&1")
    lines.append("dmesg > dmesg.txt")
    result = boot("\n".join(lines) + "\n", timeout=600)
    if result.rc is None:
        raise RuntimeError("the guest did not finish:\n" + result.console[-3000:])
    return {c.name: (result.out / "results" / f"{c.name}.txt").read_text() for c in cases}, result.read("job.log")


def compile_profiles(cases: list[Case], work: Path) -> None:
    profiles = work / "profiles"
    profiles.mkdir(exist_ok=True)
    for case in cases:
        policy = work / f"{case.name}.toml"
        subprocess.run([sys.executable, "-I", "-m", "corral.cli", "compile", str(policy), "-t", "apparmor", "--allow-unenforced",
                        "-o", str(profiles), "--force"], check=True, capture_output=True, text=True)
        for name, text in case.extra_profiles.items():
            (profiles / f"{name}.apparmor").write_text(text)


def _answers(text: str) -> dict[str, str]:
    answers = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            answers[f"{parts[0]}:{parts[1]}"] = parts[2]
    return answers


@dataclass
class Row:
    policy: str
    op: str
    intent: str
    verdicts: dict[str, str]        # backend -> allow / deny / error:...
    answers: dict[str, str]         # backend -> the probe's raw answer
    declared: dict[str, str]        # backend -> the coverage note declaring a disagreement

    def undeclared(self) -> list[str]:
        return [b for b, v in self.verdicts.items() if v != self.intent and not self.declared.get(b)]


def table(cases: list[Case] | None = None, work: Path | None = None) -> tuple[list[Row], dict[str, str]]:
    """Run the matrix on both sides; the rows and the raw outputs."""
    cases = cases or CASES
    work = work or Path(tempfile.mkdtemp(prefix="corral-diff-", dir=CACHE))
    work.mkdir(parents=True, exist_ok=True)
    probe = build_probe(work)
    for case in cases:
        _policy_file(case, work)
    compile_profiles(cases, work)
    host = run_host(cases, work, probe)
    guest, log = run_guest(cases, work, probe)
    raw = {f"run/{k}": v for k, v in host.items()} | {f"apparmor/{k}": v for k, v in guest.items()} | {"guest.log": log}
    rows = []
    for case in cases:
        coverage = _coverage(work / f"{case.name}.toml")
        unstartable = startup.missing(lower(load_policy(str(work / f"{case.name}.toml"))))
        answers = {"run": _answers(host[case.name]), "apparmor": _answers(guest[case.name])}
        for op, intent in case.ops:
            got = {b: answers[b].get(op, "missing") for b in answers}
            verdicts = {b: classify(op, a) for b, a in got.items()}
            declared = {b: declaration(op, coverage[b], b) for b, v in verdicts.items() if v != intent}
            if got["run"] == "missing" and unstartable:  # the probe never started: `corral check` warns of it
                declared["run"] = f"corral check: no program can start ({'; '.join(unstartable)})"
            rows.append(Row(case.name, op, intent, verdicts, got, declared))
    shutil.rmtree(work, ignore_errors=True)
    return rows, raw


def markdown(rows: list[Row]) -> str:
    out = ["| policy | operation | intent | corral run | AppArmor (kernel) | declared by coverage |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for b in ("run", "apparmor"):
            v = r.verdicts[b]
            mark = "" if v == r.intent else (" (declared)" if r.declared.get(b) else " **UNDECLARED**")
            cells.append(f"{v}{mark}")
        notes = "; ".join(f"{b}: {n}" for b, n in r.declared.items() if n)
        out.append(f"| {r.policy} | `{r.op}` | {r.intent} | {cells[0]} | {cells[1]} | {notes} |")
    return "\n".join(out) + "\n"


def summary(rows: list[Row]) -> str:
    policies = sorted({r.policy for r in rows})
    agree = {b: sum(1 for r in rows if r.verdicts[b] == r.intent) for b in ("run", "apparmor")}
    declared = {b: sum(1 for r in rows if r.verdicts[b] != r.intent and r.declared.get(b)) for b in ("run", "apparmor")}
    undeclared = sum(len(r.undeclared()) for r in rows)
    return (f"{len(policies)} policies, {len(rows)} operations; as intended: corral run {agree['run']}, AppArmor {agree['apparmor']}; "
            f"declared differences: corral run {declared['run']}, AppArmor {declared['apparmor']}; undeclared disagreements: {undeclared}")


HEADER = """# Differential enforcement: corral run against the kernel's AppArmor

Generated by `.venv/bin/python tests/vm/differential.py --markdown docs/differential.md`;
the same matrix runs in every `bash dev.sh test` (tests/vm/test_differential.py).
Every shipped example and five test policies (Deny inside an allowed tree,
globs, Exec and ExecProfiles, sockets, capabilities), each with at least 20
operations performed by one static C probe (tests/vm/diff_probe.c), under
`corral run` on the host (Landlock + seccomp + capabilities, as root) and
under the compiled AppArmor profile in the VM (Debian's 6.1 kernel, AppArmor
on; the probe confined with `echo "exec NAME" > /proc/self/attr/exec` after
`apparmor_parser -r`). Both sides run in private mount, network and UTS
namespaces over the same layout. The shipped examples are extended by a
wrapper that only adds the probe to `Exec`.

A verdict that differs from the policy's intent is *declared* when that
backend's coverage report rates a rule concerning the operation approximate
or not enforced (or, for a policy no program can start under, when `corral
check` warns so); otherwise it is *undeclared*: a bug in a backend or in its
coverage report. The test allows none. Executable mappings of ReadOnly files
under corral run and connecting to a unix socket by path (Landlock below ABI
9; AppArmor's `unix,` on this kernel) are declared gaps, not fixed ones.

Found and fixed with it: corral's glob matcher now models the kernel's
(`DIR/*`, `DIR/**` never match `DIR/`), `Deny = ["DIR/**"]` denies listing
DIR under AppArmor too, Writable includes hard links in AppArmor (`l`) as it
did under Landlock, and `corral check` warns when no program can start
(examples/proposal.toml).

"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    ap.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = ap.parse_args()
    rows, _ = table()
    text = markdown(rows)
    if args.markdown:
        args.markdown.write_text(f"{HEADER}**{summary(rows)}**\n\n{text}")
    else:
        print(text)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    print(summary(rows))
    return 1 if any(r.undeclared() for r in rows) else 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
