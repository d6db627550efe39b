"""``corral run POLICY [--] CMD [ARGS...]``: confine, then become CMD.

This is the start-up path of every confined command, so it avoids argparse
and every heavy import while a cached plan is valid: on a cache hit it
imports only ``os``, ``marshal`` and ``ctypes`` (``re`` only for globs to match).

Usage::

    corral run [--dry-run] [--best-effort] [--log] [--log-to FILE] [--no-cache] [--proxy-env] [-q] [-v] POLICY [--] CMD [ARGS...]

``--log-to FILE`` is ``--log`` that also writes its record to FILE (JSON
lines), which ``corral learn FILE --into POLICY`` merges.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

USAGE = "usage: corral run [--dry-run] [--best-effort] [--log] [--log-to FILE] [--no-cache] [--proxy-env] [-q] [-v] (POLICY | --plan-fd FD) [--] CMD [ARGS...]"
#: ``corral run --help``: a string, so help costs no import on the start-up path.
HELP = f"""{USAGE}

Run CMD confined by POLICY, without root: corral sets no_new_privs, drops
capabilities, applies Landlock (paths, TCP ports, scopes) and seccomp,
checks that they are on, and execs CMD, which keeps its pid, stdio, exit
status and signals. No AppArmor is needed. Anything the kernel cannot
enforce stops the run (exit 2) unless --best-effort, and is printed.

options:
  --dry-run        print what each mechanism would apply, run nothing
  --best-effort    run with what this kernel can enforce; print what it cannot
  --log            do not deny: run, and report every call the policy would deny
  --log-to FILE    --log, and write the record to FILE (JSON lines) for `corral learn --into`
  --no-cache       compute the plan again instead of using the cached one
  --proxy-env      point https_proxy (and grpc_proxy) at the egress supervisor's relay (policies with host names)
  --plan-fd FD     apply a plan read from file descriptor FD instead of POLICY (the Python API)
  -q, --quiet      do not print what is not enforced here
  -v, --verbose    say when the confinement is applied
  -h, --help       this help

exit status: CMD's own; 2 when the policy is invalid or cannot be enforced,
126 when CMD cannot be executed, 127 when it is not found.
See `corral errors` for the error codes."""
_FLAGS = {"--dry-run", "--best-effort", "--log", "--no-cache", "-q", "--quiet", "-v", "--verbose", "--proxy-env"}
EXIT_USAGE, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND = 2, 126, 127


class UsageError(Exception):
    pass


def parse(argv: list[str]) -> tuple[set[str], str | int, list[str]]:
    """Flags, the policy (a path, or the fd of a plan from the Python API), CMD.
    ``--log-to FILE`` comes back as ``--log`` and ``--log-to=FILE``."""
    flags: set[str] = set()
    plan_fd: int | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        if argv[i] in ("-h", "--help"):
            raise UsageError("")
        if argv[i] == "--log-to":
            if i + 1 >= len(argv) or not argv[i + 1] or argv[i + 1] == "--":
                raise UsageError("--log-to takes a file name")
            flags |= {"--log", "--log-to=" + argv[i + 1]}
            i += 2
            continue
        if argv[i] == "--plan-fd":
            if i + 1 >= len(argv) or not argv[i + 1].isdigit():
                raise UsageError("--plan-fd takes a file descriptor number")
            plan_fd = int(argv[i + 1])
            i += 2
            continue
        if argv[i] not in _FLAGS:
            raise UsageError(f"unknown option {argv[i]!r}")
        flags.add({"-q": "--quiet", "-v": "--verbose"}.get(argv[i], argv[i]))
        i += 1
    policy: str | int
    if plan_fd is not None:
        policy = plan_fd
        rest = argv[i:]
    else:
        if i >= len(argv) or argv[i] == "--":
            raise UsageError("a policy file is required")
        policy = argv[i]
        rest = argv[i + 1 :]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if not rest and "--dry-run" not in flags:
        raise UsageError("a command to run is required")
    return flags, policy, rest


def resolve(cmd: str) -> str | None:
    """CMD as execvp would find it, as an absolute, resolved path."""
    if "/" in cmd:
        return os.path.realpath(cmd) if os.path.isfile(cmd) else None
    for directory in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(os.pathsep):
        candidate = os.path.join(directory or ".", cmd)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


def exec_allowed(plan: "dict[str, Any]", path: str) -> str | None:
    """Why the policy would stop CMD from starting, or None if it would not."""
    if not plan["exec_syscall"]:
        return "the policy does not allow execve (add the exec flag to [Runtime])"
    if path in plan["exec_paths"]:
        return None
    if plan["exec"]:
        import re  # only for Exec globs: `re` costs milliseconds of start-up
    if not any(re.fullmatch(p, path) for p in plan["exec"]):
        return f"the policy does not allow executing {path} (add it to Filesystem.Exec)"
    return None


def describe(plan: "dict[str, Any]", report: "Any") -> str:
    """The --dry-run text: what each mechanism would apply."""
    lines = [f"corral run: policy '{plan['name']}' ({plan['source']})", "  no_new_privs: set"]
    caps = ", ".join(plan["cap_names"]) or "none"
    lines.append(f"  capabilities: keep {caps}; every other capability is dropped from all sets")
    if report.abi:
        from ..landlock_rights import FILE_RIGHTS, FS_BITS, NET_BITS, SCOPE_BITS

        abi = report.abi  # say only what this kernel applies, and what it cannot
        fs = [r for r in plan["handled_fs"] if FS_BITS[r][1] <= abi]
        net = [r for r in plan["handled_net"] if NET_BITS[r][1] <= abi]
        scoped = [s for s in plan["scoped"] if SCOPE_BITS[s][1] <= abi]
        lines.append(f"  landlock (kernel ABI {abi}): handles {len(fs)} filesystem rights"
                     + (f", {' and '.join(net)}" if net else "")
                     + (f"; scoped: {', '.join(scoped)}" if scoped else ""))  # fmt: skip
        missing = [f"{n} (ABI {table[n][1]})" for names, table in ((plan["handled_fs"], FS_BITS), (plan["handled_net"], NET_BITS), (plan["scoped"], SCOPE_BITS)) for n in names if table[n][1] > abi]
        if missing:
            lines.append(f"    not on this kernel: {', '.join(missing)}")
        for path, rights in report.rules:
            kept = [r for r in rights if r in fs and (r in FILE_RIGHTS or os.path.isdir(path))]
            lines.append(f"    {path}: {', '.join(kept)}")
        lines += [f"    skipped {s}" for s in report.skipped]
        ports: dict[str, list[int]] = {}
        for right, port in plan["ports"]:
            ports.setdefault(right, []).append(port)
        lines += [f"    {right}: {', '.join(map(str, sorted(p)))}" for right, p in sorted(ports.items())]
    else:
        lines.append("  landlock: not available on this kernel")
    lines.append(f"  seccomp: {plan['syscall_count']} system calls allowed ({plan['filtered_count']} with argument filters), "
                 f"everything else fails with EPERM; BPF of {len(plan['bpf']) // 8} instructions built by libseccomp")  # fmt: skip
    egress = plan.get("egress")
    if egress:
        names = ", ".join(f"{h['host']}:{h['port'] or '*'}" for h in egress["hosts"]) or "no names"
        offer = f"only {', '.join(egress['alpn'])}" if egress.get("alpn_only") else " or ".join(egress["alpn"])
        alpn = f", ALPN offered: {offer}, chosen by the server: checked in TLS 1.2, encrypted in TLS 1.3" if egress["alpn"] else ""
        denies = f"; denied peers: {', '.join(d['host'] or d['address'] for d in egress['deny'])}" if egress["deny"] else ""
        lines.append(f"  egress supervisor: {names} (TLS relay: SNI{alpn}){denies}; connect, sendto with an address, sendmsg and sendmmsg are answered by it")
        if egress.get("unix"):
            lines.append(f"    unix sockets: {egress['unix']}")
    if report.not_enforced:
        lines.append("  not enforced by corral run:")
        lines += [f"    {n}" for n in report.not_enforced]
    if report.narrowed:
        lines.append("  narrower than the policy:")
        lines += [f"    {n}" for n in report.narrowed]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    try:
        flags, policy, cmd = parse(argv)
    except UsageError as exc:
        if not str(exc):
            print(HELP)
            return 0
        print(f"{USAGE}\ncorral run: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if str(exc) else 0
    from . import apply as applying
    from . import plan as plans

    try:
        if isinstance(policy, int):
            plan = plans.read_fd(policy)
        else:
            plan = plans.get(policy, use_cache="--no-cache" not in flags, log_mode="--log" in flags)
        record_to = next((f.split("=", 1)[1] for f in flags if f.startswith("--log-to=")), None)
        if record_to is not None:  # never writable inside: the program could forge what learn merges
            plan = {**plan, "records": [os.path.abspath(record_to)]}
        report = applying.check(plan, best_effort="--best-effort" in flags)
        if "--dry-run" in flags:
            report.rules = applying.landlock_rules(plan, report)  # the splits, without applying
            print(describe(plan, report))
            return 0
        path = resolve(cmd[0])
        if path is None:
            from .._base import CorralError

            print(CorralError(f"{cmd[0]}: command not found", code="R003", hint="check the command's name and PATH").render("run"), file=sys.stderr)
            return EXIT_NOT_FOUND
        why = exec_allowed(plan, path)
        if why is not None:
            raise applying.SandboxError(f"{cmd[0]} could not start under this policy: {why}", "or run it through a program the policy allows", code="R005")
        supervised = bool(plan.get("egress"))
        if supervised:
            from .egress.notify import missing

            lacking = missing()
            if lacking and "--best-effort" not in flags:
                raise applying.SandboxError(f"the policy names hosts, denied peers or ALPN, which need the egress supervisor; this kernel lacks {lacking}", "pass --best-effort to run with the port rules only")
            if "--log" in flags:  # learning mode allows and records; it has its own supervisor
                supervised = False
                report.not_enforced.append("host names, Networking.Deny and ALPN (learning mode runs without the egress supervisor): Landlock allows their ports to every address")
            if lacking:
                supervised = False
                report.not_enforced.append(f"host names, Networking.Deny and ALPN (the kernel lacks {lacking}): Landlock allows their ports to every address")
        if report.not_enforced and "--quiet" not in flags:
            print("corral run: not enforced here: " + "; ".join(report.not_enforced), file=sys.stderr)
        if report.narrowed and "--quiet" not in flags:
            n = len(report.narrowed)
            print(f"corral run: narrower than the policy: {n} glob rule{'s' if n > 1 else ''} granted only what exists now (--dry-run lists them)", file=sys.stderr)
        if "--log" in flags:
            from .learn import run_logged

            if "--quiet" not in flags:
                from .runlog import LANDLOCK_BLIND

                print(LANDLOCK_BLIND, file=sys.stderr)
            return run_logged(plan, report, path, cmd, record_to)
        if supervised:
            from .egress.supervisor import run_supervised

            if "--verbose" in flags:
                os.write(2, f"corral run: confined by '{plan['name']}' with the egress supervisor; exec {path}\n".encode())
            return run_supervised(plan, report, path, cmd, proxy_env="--proxy-env" in flags)
        sys.stdout.flush()
        sys.stderr.flush()
        applying.apply(plan, report)
        if report.missing_writable and "--quiet" not in flags:
            absent = ", ".join(report.missing_writable[:5]) + (" ..." if len(report.missing_writable) > 5 else "")
            os.write(2, f"corral run: note: writable paths that do not exist are not granted (Landlock cannot name them), so they cannot be created: {absent}\n".encode())
        if "--verbose" in flags:
            os.write(2, f"corral run: confined by '{plan['name']}'; exec {path}\n".encode())
    except applying.SandboxError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # PolicyError and friends: located, no traceback
        from ..errors import CorralError, PolicyError

        if isinstance(exc, CorralError):
            print(exc.render("run"), file=sys.stderr)
            return EXIT_USAGE
        raise
    try:
        os.execv(path, cmd)
    except OSError as exc:
        # Already confined: the message may not get out if write is denied.
        try:
            os.write(2, f"corral run: cannot execute {path}: {exc.strerror}\n".encode())
        except OSError:
            pass
        os._exit(EXIT_CANNOT_EXEC)
