"""`corral install POLICY` / `corral uninstall NAME`: put a profile on this
host, or take it off, without ever leaving a broken one behind.

Install: compile the profile; have the real ``apparmor_parser -Q -S``
accept it before anything is written; write it atomically into the profile
directory; load it with ``apparmor_parser -r``. If loading fails, the old
file is put back and reloaded (or the new one removed), and the parser's
message is shown. On a kernel without AppArmor nothing is written unless
``--write-only`` (then the load step is skipped, and said so).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from ._base import CorralError
from ._tools import find, run_apparmor_parser

if TYPE_CHECKING:
    from .ir import IR

#: Where the kubelet looks for Localhost seccomp profiles (its --root-dir/seccomp).
KUBELET_SECCOMP = "/var/lib/kubelet/seccomp/corral"


def _seccomp_dir(seccomp_to: str) -> Path:
    """Where Docker or the kubelet expect seccomp JSON, or the directory given."""
    return Path({"kubelet": KUBELET_SECCOMP, "docker": "/etc/docker/seccomp"}.get(seccomp_to, seccomp_to))


def apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


def _parser() -> str:
    found = find("apparmor_parser")
    if found is None:
        raise CorralError("apparmor_parser is not installed", code="I001", hint="apt-get install apparmor")
    return found


#: The kernel's list of loaded profiles, one "NAME (MODE)" a line.
PROFILES = Path("/sys/kernel/security/apparmor/profiles")


def loaded_profiles() -> set[str]:
    """Names of the profiles the kernel has loaded (empty if it cannot be read)."""
    try:
        lines = PROFILES.read_text().splitlines()
    except OSError:
        return set()
    return {line.rsplit(" (", 1)[0] for line in lines}


def _unloaded_transitions(ir: "IR") -> list[tuple[str, str]]:
    """ExecProfiles whose target profile is not loaded: AppArmor denies
    those execs (px to a missing profile), so say it at install time."""
    loaded = loaded_profiles()
    return sorted({(f.path, f.transition) for f in ir.files if f.transition and f.transition not in loaded})


@dataclass
class Plan:
    steps: list[str] = field(default_factory=list)
    #: What the user should know that is not a step (printed on stderr).
    notes: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.steps.append(text)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """``cmd`` is [apparmor_parser, ARGS...]: run with a time limit."""
    return run_apparmor_parser(cmd[1:])


def install(policy: str, directory: str, *, dry_run: bool, complain: bool, write_only: bool, seccomp_to: str | None) -> Plan:
    from .backends.apparmor import emit
    from .backends.seccomp import to_oci
    from .fsutil import write_atomic
    from .lower import lower
    from .policy import load_policy

    plan = Plan()
    ir = lower(load_policy(policy))
    text = emit(ir).content.decode()
    if complain:
        text = text.replace(f"profile {ir.name} {{", f"profile {ir.name} flags=(complain) {{", 1)
    target = Path(directory) / f"corral.{ir.name}"
    enabled = apparmor_enabled()
    if not enabled and not write_only:
        if not dry_run:
            raise CorralError(
                "this kernel has no AppArmor enabled (/sys/module/apparmor/parameters/enabled): nothing was written",
                code="I002",
                hint="pass --write-only to write the profile for another boot or host; `corral run` enforces without AppArmor",
            )
        plan.notes.append("this kernel has no AppArmor enabled: a real install stops before writing anything unless --write-only")
    parser = _parser()
    with_check = target.with_name(f".{target.name}.check")
    if not dry_run:
        with_check.parent.mkdir(parents=True, exist_ok=True)
        with_check.write_text(text)
        try:
            check = _run([parser, "-Q", "-S", str(with_check)])
        finally:
            with_check.unlink(missing_ok=True)
        if check.returncode != 0:
            raise CorralError(f"apparmor_parser rejected the profile, nothing was written:\n{check.stderr.strip()}", code="I003", hint="this is a bug in corral's AppArmor backend if the policy loaded; please report it")
    plan.say(f"check   {parser} -Q -S (the profile compiles)")
    old = target.read_bytes() if target.exists() else None
    plan.say(f"write   {target}" + (" (replacing the existing profile, kept until the new one loads)" if old is not None else "") + (" [complain mode]" if complain else ""))
    if not dry_run:
        write_atomic(target, text.encode(), force=True)
    if enabled and not write_only:
        plan.say(f"load    {parser} -r {target}")
        if not dry_run:
            loaded = _run([parser, "-r", str(target)])
            if loaded.returncode != 0:
                if old is not None:
                    write_atomic(target, old, force=True)
                    reloaded = _run([parser, "-r", str(target)])
                    if reloaded.returncode == 0:
                        what = "the previous profile was restored and reloaded"
                    else:  # a failed replace changes nothing in the kernel: it still has what it had
                        what = (f"the previous profile's file was restored, but reloading it failed too "
                                f"({reloaded.stderr.strip() or f'exit {reloaded.returncode}'}); the kernel keeps "
                                "whatever it had loaded before this install")
                else:
                    target.unlink(missing_ok=True)
                    what = "the new file was removed"
                raise CorralError(f"loading failed, {what}:\n{loaded.stderr.strip()}", code="I004", hint="loading needs root (CAP_MAC_ADMIN); --write-only writes the file without loading it")
        if not dry_run:
            for program, profile in _unloaded_transitions(ir):
                plan.say(f"warning ExecProfiles: profile '{profile}' is not loaded: executing {program} is denied until it is")
    else:
        plan.say("skip    loading: " + ("--write-only" if write_only else "no AppArmor in this kernel"))
    if seccomp_to:
        import json

        seccomp_path = _seccomp_dir(seccomp_to) / f"{ir.name}.json"
        plan.say(f"write   {seccomp_path}")
        if not dry_run:
            write_atomic(seccomp_path, (json.dumps(to_oci(ir), indent=2) + "\n").encode(), force=True)
    return plan


def uninstall(name: str, directory: str, *, dry_run: bool, write_only: bool, seccomp_to: str | None) -> Plan:
    from .policy.items import NAME_RE

    if not NAME_RE.fullmatch(name):  # a name, never a path: nothing outside --dir is touched
        raise CorralError(f"{name!r} is not a policy name", code="I007", hint=f"a name is what a policy's Name may be: {NAME_RE.pattern}")
    plan = Plan()
    target = Path(directory) / f"corral.{name}"
    if not target.exists():
        if dry_run:
            plan.notes.append(f"{target} is not installed: nothing to remove")
            return plan
        raise CorralError(f"{target} does not exist", code="I005", hint=f"installed profiles are named corral.NAME in {directory}")
    enabled = apparmor_enabled()
    if not enabled and not write_only:
        if not dry_run:
            raise CorralError("this kernel has no AppArmor enabled: nothing was removed", code="I002", hint="pass --write-only to remove the file only")
        plan.notes.append("this kernel has no AppArmor enabled: a real uninstall stops before removing anything unless --write-only")
    if enabled and not write_only:
        parser = _parser()
        plan.say(f"unload  {parser} -R {target}")
        if not dry_run:
            removed = _run([parser, "-R", str(target)])
            if removed.returncode != 0:
                raise CorralError(f"unloading failed, nothing was removed:\n{removed.stderr.strip()}", code="I006", hint="unloading needs root (CAP_MAC_ADMIN); --write-only removes the file only")
    plan.say(f"remove  {target}")
    if not dry_run:
        target.unlink()
    if seccomp_to:
        seccomp_path = _seccomp_dir(seccomp_to) / f"{name}.json"
        if seccomp_path.exists():
            plan.say(f"remove  {seccomp_path}")
            if not dry_run:
                seccomp_path.unlink()
    return plan
