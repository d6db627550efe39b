"""Backends: IR in, artifact plus coverage report out. One module each.

``BACKENDS`` is the single registry: the CLI's ``-t`` choices, the docs and
the parametrised tests all read it. To add a backend, write a module with

    def emit(ir: IR) -> Output

whose coverage names *every* IR rule (``Level.NONE`` with a reason where
the mechanism cannot express it), then add one ``Target`` line below.
Modules are imported lazily so that ``corral compile -t apparmor`` never
loads libseccomp.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass

from ..ir import IR, Rule


class Level(enum.IntEnum):
    """How well a backend enforces one rule's restriction."""

    NONE = 0
    APPROX = 1  # enforced, but wider than the policy says
    EXACT = 2


@dataclass(frozen=True)
class Coverage:
    rule: Rule
    level: Level
    note: str = ""


@dataclass(frozen=True)
class Output:
    """What a backend produced: file content and its coverage of the IR."""

    content: bytes
    coverage: tuple[Coverage, ...]
    binary: bool = False


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    suffix: str
    mechanism: str  # targets sharing a mechanism enforce the same things
    summary: str
    function: str = "emit"  # the module's entry point for this target
    #: Targets whose files this one's consumer needs too (docker run names the
    #: seccomp JSON and the AppArmor profile): asking for it writes them as well.
    needs: tuple[str, ...] = ()

    def emit(self, ir: IR) -> Output:
        module = importlib.import_module(f"{__name__}.{self.module}")
        return getattr(module, self.function)(ir)  # type: ignore[no-any-return]

    def coverage(self, ir: IR) -> tuple[tuple[Coverage, ...], Output | None]:
        """The coverage, and the artifact when computing it meant building it
        (so a caller that needs the artifact too does not build it twice).
        A module with a ``coverage`` function answers without building."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        if hasattr(module, "coverage"):
            return module.coverage(ir), None
        out = self.emit(ir)
        return out.coverage, out


BACKENDS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("apparmor", "apparmor", ".apparmor", "apparmor", "AppArmor profile (ABI 3.0), for apparmor_parser"),
        Target("seccomp", "seccomp", ".seccomp.json", "seccomp", "OCI/Docker seccomp JSON, for docker, podman and runc"),
        Target("bpf", "seccomp", ".bpf", "seccomp", "raw seccomp BPF for the native arch, built by libseccomp", "emit_bpf"),
        Target("capabilities", "capabilities", ".caps", "capabilities", "capability set, and the docker --cap-drop/--cap-add flags"),
        Target("landlock", "landlock", ".landlock.json", "landlock", "Landlock ruleset document (filesystem, TCP ports, scopes)"),
        Target("docker", "docker", ".docker.yaml", "docker", "docker run flags and a compose service, with the seccomp JSON and AppArmor profile they use", needs=("seccomp", "apparmor")),
        Target("systemd", "systemd", ".systemd.conf", "systemd", "systemd drop-in: sandboxing settings for a service"),
        Target("kubernetes", "kubernetes", ".k8s.yaml", "kubernetes", "Pod securityContext and Security Profiles Operator objects"),
        Target("nftables", "nftables", ".nft", "nftables", "nftables ruleset for the policy's ports and peer addresses (TCP and UDP)"),
        Target("egress", "egress", ".egress.json", "egress", "rules of corral run's egress supervisor: host names, denied peers, TLS SNI and ALPN"),
    )
}



def with_needs(targets: list[str]) -> list[str]:
    """The targets asked for, each followed by the targets its consumer also
    needs (once each, in order): what a self-contained compile writes."""
    out: list[str] = []
    for name in targets:
        for t in (name, *BACKENDS[name].needs):
            if t not in out:
                out.append(t)
    return out


__all__ = ["BACKENDS", "Coverage", "Level", "Output", "Target", "with_needs"]
