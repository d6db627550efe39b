"""The Kubernetes target against the facts of the Security Profiles Operator
releases it targets (v0.9.0 to v1.0.x) and of the Kubernetes API.

The facts below were read from SPO's own tree at tags v0.9.0, v0.10.1 and
v1.0.0 (deploy/base-crds/crds/*.yaml; api/seccompprofile/v1beta1's
GetProfilePath; internal/pkg/config's OperatorProfilesFolder): scope, served
versions, required fields, field types and where a profile lands on the
node. The Pod is checked by kubernetes-validate, for 1.30+ as written and
for 1.29 with the appArmorProfile field deleted as the header says.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from corral.backends import BACKENDS
from corral.backends.kubernetes import SPO_RANGE

from conftest import EXAMPLES, ROOT, ir_of

#: Per SPO release: (kind -> (scope, served API versions, required spec fields)).
SPO_FACTS = {
    "v0.9.0": {"SeccompProfile": ("Cluster", {"v1beta1"}, {"defaultAction"}), "AppArmorProfile": ("Cluster", {"v1alpha1"}, set())},
    "v0.10.1": {"SeccompProfile": ("Cluster", {"v1beta1"}, {"defaultAction"}), "AppArmorProfile": ("Cluster", {"v1alpha1"}, set())},
    "v1.0.0": {"SeccompProfile": ("Cluster", {"v1", "v1beta1"}, {"defaultAction"}), "AppArmorProfile": ("Cluster", {"v1", "v1alpha1"}, set())},
}  # fmt: skip
#: v0.8.x, outside the range: namespaced, and AppArmorProfile required spec.policy (no abstract).
SPO_V08 = {"SeccompProfile": ("Namespaced", {"v1beta1"}, {"defaultAction"}), "AppArmorProfile": ("Namespaced", {"v1alpha1"}, {"policy"})}
#: SeccompProfile v1beta1 field types in the range: errnoRet an integer; arg values int64, minimum 0.
INT64_MAX = 2**63 - 1
#: SPO writes a cluster-scoped seccomp profile to <kubelet seccomp root>/operator/<name>.json.
SECCOMP_NODE_PATH = "operator/{name}.json"


def _validate() -> str:
    return shutil.which("kubernetes-validate") or str(ROOT / ".venv/bin/kubernetes-validate")


def _objects(text: str, file: str) -> list[dict]:  # type: ignore[type-arg]
    return list(yaml.safe_load_all(BACKENDS["kubernetes"].emit(ir_of(text, file)).content.decode()))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("release", sorted(SPO_FACTS))
def test_spo_objects_match_the_release(example: Path, release: str) -> None:
    pod, *profiles = _objects(example.read_text(), str(example))
    for obj in profiles:
        group, version = obj["apiVersion"].split("/")
        scope, served, required = SPO_FACTS[release][obj["kind"]]
        assert group == "security-profiles-operator.x-k8s.io" and version in served, (release, obj["apiVersion"])
        assert ("namespace" in obj["metadata"]) == (scope == "Namespaced"), (release, obj["metadata"])
        assert required <= set(obj["spec"]), (release, obj["kind"], required)
    seccomp = next(o for o in profiles if o["kind"] == "SeccompProfile")
    apparmor = next(o for o in profiles if o["kind"] == "AppArmorProfile")
    for entry in seccomp["spec"]["syscalls"]:
        assert isinstance(entry.get("errnoRet", 0), int)
        for arg in entry.get("args", []):
            assert 0 <= arg["value"] <= INT64_MAX and 0 <= arg.get("valueTwo", 0) <= INT64_MAX, arg
    expected = SECCOMP_NODE_PATH.format(name=seccomp["metadata"]["name"])
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert pod["spec"]["securityContext"]["seccompProfile"]["localhostProfile"] == expected
    assert ctx["seccompProfile"]["localhostProfile"] == expected
    assert ctx["appArmorProfile"]["localhostProfile"] == apparmor["metadata"]["name"]  # SPO loads it under the object's name
    annotation = f"container.apparmor.security.beta.kubernetes.io/{pod['spec']['containers'][0]['name']}"
    assert pod["metadata"]["annotations"][annotation] == f"localhost/{apparmor['metadata']['name']}"


def test_the_range_excludes_v08_for_a_reason() -> None:
    """The objects could not work on 0.8.x: namespaced there, and the
    AppArmorProfile wanted spec.policy. The README and header name the range."""
    _, seccomp, apparmor = _objects("[Filesystem]\nReadOnly = [\"/etc/hosts\"]\n", "p.toml")
    assert "namespace" not in seccomp["metadata"] and SPO_V08["SeccompProfile"][0] == "Namespaced"
    assert not SPO_V08["AppArmorProfile"][2] <= set(apparmor["spec"])
    assert SPO_RANGE == ("v0.9.0", "v1.0")
    text = BACKENDS["kubernetes"].emit(ir_of("", "p.toml")).content.decode()
    assert "Security Profiles Operator v0.9.0 to v1.0.x" in text and "Kubernetes 1.30+" in text


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_pod_validates_on_kubernetes_with_the_apparmor_field(tmp_path: Path, version: str) -> None:
    pod = _objects((EXAMPLES[0]).read_text(), str(EXAMPLES[0]))[0]
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    proc = subprocess.run([_validate(), "--strict", "-k", version, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pod_before_1_30_needs_the_field_deleted_as_the_header_says(tmp_path: Path) -> None:
    pod = _objects((EXAMPLES[0]).read_text(), str(EXAMPLES[0]))[0]
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(pod))
    as_is = subprocess.run([_validate(), "--strict", "-k", "1.29.0", str(path)], capture_output=True, text=True)
    assert as_is.returncode != 0  # 1.29 rejects securityContext.appArmorProfile
    del pod["spec"]["containers"][0]["securityContext"]["appArmorProfile"]
    path.write_text(yaml.safe_dump(pod))
    edited = subprocess.run([_validate(), "--strict", "-k", "1.29.0", str(path)], capture_output=True, text=True)
    assert edited.returncode == 0, edited.stdout + edited.stderr
