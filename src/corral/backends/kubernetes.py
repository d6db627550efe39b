"""Kubernetes backend: a Pod whose securityContext uses the profiles, and
the Security Profiles Operator objects that put them on every node.

Targets SPO v0.9.0 to v1.0.x (``SPO_RANGE``), checked against those
releases' CRDs and source: ``SeccompProfile`` (v1beta1) and
``AppArmorProfile`` (v1alpha1) are cluster-scoped there (no namespace), both
versions are served by every release of the range (v1.0 stores v1 and
converts), and SPO writes a cluster-scoped seccomp profile to
``<kubelet seccomp root>/operator/NAME.json``, so the Pod asks for
``localhostProfile: operator/NAME.json``; the AppArmor profile is loaded
under the object's name.

* Pod: ``seccompProfile`` and ``appArmorProfile`` of type Localhost,
  capabilities drop ALL / add, allowPrivilegeEscalation false,
  readOnlyRootFilesystem true. The ``appArmorProfile`` field needs
  Kubernetes 1.30+; the Pod also carries the AppArmor annotation, which is
  all a cluster before 1.30 reads: there, delete the field (1.29's API
  rejects it). The header says so.
* ``SeccompProfile``: the same rules as the OCI JSON, argument filters
  included: exact.
* ``AppArmorProfile`` in its ``abstract`` form: executables, libraries,
  read-only / read-write paths, TCP/UDP/raw, capabilities. It cannot say
  deny rules, audit rules, exec modes, or socket types beyond TCP, UDP and
  raw: those are reported, and the full profile is what ``-t apparmor``
  writes.
"""

from __future__ import annotations

import re
from typing import Any

from ..escape import comment, yaml_scalar
from ..ir import IR, Access
from . import Coverage, Level, Output
from .seccomp import to_oci

SPO = "security-profiles-operator.x-k8s.io"
#: The Security Profiles Operator releases these objects are written for.
SPO_RANGE = ("v0.9.0", "v1.0")
#: Where SPO puts a cluster-scoped seccomp profile, relative to the kubelet's seccomp root.
SPO_SECCOMP_DIR = "operator"
#: The first Kubernetes release with securityContext.appArmorProfile.
APPARMOR_FIELD_SINCE = (1, 30)


def _yaml(value: object, indent: int = 0) -> list[str]:
    """A small YAML writer for plain data (JSON scalars are valid YAML)."""
    pad = "  " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out += _yaml(v, indent + 1)
            else:
                out.append(f"{pad}{k}: {yaml_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = _yaml(item, indent + 1)
                out.append(f"{pad}- {sub[0].strip()}")
                out += sub[1:]
            else:
                out.append(f"{pad}- {yaml_scalar(item)}")
    return out


def dns_name(name: str, *, label: bool = False) -> str:
    """A policy name as a Kubernetes object name (RFC 1123 subdomain), or a
    container name (label: no dots, at most 63 characters)."""
    out = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    if label:
        out = out.replace(".", "-")[:63]
    return out.strip("-.") or "corral"


def objects(ir: IR) -> tuple[list[dict[str, Any]], list[Coverage]]:
    caps = [c.name.upper() for c in ir.capabilities if not c.deny]
    obj, container = dns_name(ir.name), dns_name(ir.name, label=True)
    oci = to_oci(ir)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": obj, "annotations": {f"container.apparmor.security.beta.kubernetes.io/{container}": f"localhost/{obj}"}},
        "spec": {
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": f"{SPO_SECCOMP_DIR}/{obj}.json"}},
            "containers": [{
                "name": container,
                "image": "REPLACE-WITH-YOUR-IMAGE",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], **({"add": caps} if caps else {})},
                    "appArmorProfile": {"type": "Localhost", "localhostProfile": obj},  # as the SPO object installs it
                    "seccompProfile": {"type": "Localhost", "localhostProfile": f"{SPO_SECCOMP_DIR}/{obj}.json"},
                },
            }],
        },
    }  # fmt: skip
    seccomp: dict[str, Any] = {
        "apiVersion": f"{SPO}/v1beta1",
        "kind": "SeccompProfile",
        "metadata": {"name": obj},  # cluster-scoped since SPO v0.9.0
        # the CRD has no "comment": keep each entry to its fields
        "spec": {"defaultAction": oci["defaultAction"], "architectures": oci["architectures"], "syscalls": [{k: v for k, v in e.items() if k != "comment"} for e in oci["syscalls"]]},
    }
    cov: list[Coverage] = [Coverage(c, Level.EXACT) for c in ir.capabilities]
    cov += [Coverage(r, Level.EXACT) for r in ir.syscalls]
    cov += [Coverage(r, Level.EXACT) for r in ir.sockets]
    cov += [Coverage(r, Level.EXACT) for r in ir.socket_options]
    files = {"ro": [], "rw": [], "exe": [], "lib": []}  # type: dict[str, list[str]]
    for f in ir.files:
        if f.deny:
            cov.append(Coverage(f, Level.NONE, "the abstract AppArmorProfile has no deny rules"))
            continue
        key = "exe" if Access.EXEC in f.access else "rw" if Access.WRITE in f.access else "lib" if Access.MAP_EXEC in f.access else "ro"
        files[key].append(f.path)
        cov.append(Coverage(f, Level.EXACT))
    protocols = {s.type for s in ir.sockets if s.family in ("inet", "inet6")}
    abstract: dict[str, object] = {
        "executable": {"allowedExecutables": files["exe"], "allowedLibraries": files["lib"]},
        "filesystem": {"readOnlyPaths": files["ro"], "readWritePaths": files["rw"]},
        "network": {"allowRaw": "raw" in protocols, "allowedProtocols": {"allowTcp": "stream" in protocols, "allowUdp": "dgram" in protocols}},
        "capability": {"allowedCapabilities": [c.lower() for c in caps]},
    }
    apparmor: dict[str, Any] = {"apiVersion": f"{SPO}/v1alpha1", "kind": "AppArmorProfile", "metadata": {"name": obj}, "spec": {"abstract": abstract}}
    cov += [Coverage(a, Level.NONE, "the abstract AppArmorProfile cannot log writes") for a in ir.audits]
    cov += [Coverage(p, Level.NONE, "Kubernetes securityContext cannot restrict ports (a NetworkPolicy can, by pod)") for p in ir.ports]
    cov += [
        Coverage(r, Level.NONE, "not emitted: a NetworkPolicy takes CIDRs, not names; addresses resolved at compile time would be a snapshot that goes stale (and cannot check SNI or ALPN)")
        for r in ir.egress()
    ]
    return [pod, seccomp, apparmor], cov


def emit(ir: IR) -> Output:
    docs, cov = objects(ir)
    header = [
        comment(f"Kubernetes objects generated by corral from {ir.source}."),
        f"# The SeccompProfile and AppArmorProfile need the Security Profiles Operator {SPO_RANGE[0]} to {SPO_RANGE[1]}.x",
        "# (cluster-scoped objects; SPO writes the seccomp profile to operator/NAME.json).",
        "# The Pod's appArmorProfile field needs Kubernetes 1.30+: on an older cluster delete it;",
        "# the container.apparmor.security.beta.kubernetes.io annotation then applies the same profile.",
    ]
    text = "\n".join(header) + "\n" + "\n---\n".join("\n".join(_yaml(d)) for d in docs) + "\n"
    return Output(text.encode(), tuple(cov))


__all__ = ["APPARMOR_FIELD_SINCE", "SPO_RANGE", "SPO_SECCOMP_DIR", "emit", "objects"]
