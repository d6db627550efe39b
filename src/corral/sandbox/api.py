"""The Python API: confine child processes without shelling out to the CLI.

    from corral import Sandbox

    box = Sandbox("examples/agent-http2.toml")      # PolicyError, SandboxError
    proc = box.popen(["curl", "https://example.org/"], stdout=subprocess.PIPE)
    out, _ = proc.communicate()

``popen`` returns a real ``subprocess.Popen`` whose pid is the confined
program's own: a small launcher (``corral run --plan-fd``) receives the
compiled plan on a memfd, applies it with the same code and the same
fail-closed checks as ``corral run``, then execs the program. The checks
that can fail (policy errors, kernel support, whether the policy lets the
program start at all) run in the calling process first and raise.

``confine()`` applies the plan to the *calling* process, irreversibly: for
code that forks by itself, or a worker that wants to lock itself down.
(As a ``preexec_fn`` it would run before subprocess closes file
descriptors, which the policy may not allow; prefer ``popen``.)
"""

from __future__ import annotations

import marshal
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._tools import corral_command
from . import plan as plans
from .apply import Report, SandboxError, apply, check
from .runner import exec_allowed, resolve


class Sandbox:
    """A compiled policy, checked against this kernel, ready to confine."""

    def __init__(self, policy: str | Path, *, best_effort: bool = False, use_cache: bool = True) -> None:
        self.policy = str(policy)
        self.plan: dict[str, Any] = plans.get(self.policy, use_cache=use_cache)
        self.best_effort = best_effort
        self.report: Report = check(self.plan, best_effort=best_effort)

    @classmethod
    def from_text(cls, text: str, *, name: str = "<policy>", best_effort: bool = False) -> "Sandbox":
        """A sandbox from policy text (errors cite ``name``)."""
        from ..lower import lower
        from ..policy import load_policy_text

        box = cls.__new__(cls)
        box.policy = name
        box.plan = plans.build(lower(load_policy_text(text, name)), [])
        box.best_effort = best_effort
        box.report = check(box.plan, best_effort=best_effort)
        return box

    @property
    def not_enforced(self) -> list[str]:
        """What this kernel and these mechanisms do not enforce (never silent)."""
        return list(self.report.not_enforced)

    def popen(self, args: Sequence[str], **kwargs: Any) -> "subprocess.Popen[Any]":
        """Start ``args`` confined; keyword arguments go to subprocess.Popen."""
        if isinstance(args, (str, bytes)):
            raise TypeError("args must be a sequence of strings, as for subprocess.Popen without shell=True")
        if kwargs.get("shell") or kwargs.get("executable") or kwargs.get("preexec_fn"):
            raise TypeError("popen takes no shell, executable or preexec_fn: the sandbox starts the program itself")
        path = resolve(args[0])
        if path is None:
            raise FileNotFoundError(2, "command not found", args[0])
        why = exec_allowed(self.plan, path)
        if why is not None:
            raise SandboxError(f"{args[0]} could not start under this policy: {why}", code="R005")
        fd = os.memfd_create("corral-plan", os.MFD_CLOEXEC)
        try:
            os.write(fd, marshal.dumps(self.plan))
            os.lseek(fd, 0, os.SEEK_SET)
            pass_fds = (*kwargs.pop("pass_fds", ()), fd)
            launcher = [*corral_command(), "run", "-q"]
            if self.best_effort:
                launcher.append("--best-effort")
            return subprocess.Popen([*launcher, "--plan-fd", str(fd), "--", *args], pass_fds=pass_fds, **kwargs)
        finally:
            os.close(fd)

    def run(self, args: Sequence[str], **kwargs: Any) -> "subprocess.CompletedProcess[Any]":
        """Like subprocess.run, confined."""
        timeout = kwargs.pop("timeout", None)
        check_rc = kwargs.pop("check", False)
        if "input" in kwargs:
            kwargs.setdefault("stdin", subprocess.PIPE)
        data = kwargs.pop("input", None)
        if kwargs.pop("capture_output", False):
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        with self.popen(args, **kwargs) as proc:
            try:
                out, err = proc.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        result = subprocess.CompletedProcess(list(args), proc.returncode, out, err)
        if check_rc:
            result.check_returncode()
        return result

    def confine(self) -> None:
        """Apply the policy to the calling process. There is no way back."""
        apply(self.plan, self.report)


__all__ = ["Sandbox", "SandboxError"]
