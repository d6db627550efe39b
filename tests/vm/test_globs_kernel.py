"""corral's glob matcher (policy/globs.py, used by learn, lint, diff and
explain) models the kernel's AppArmor matching, proven against the kernel:
every glob below becomes a profile granting read on it, the static probe
reads every file and lists every directory under each profile in the guest,
and globs.matches must give the kernel's answer for each pair.

The cases are the ones where shell-style matching and AppArmor differ: a
``*`` or ``**`` right after ``/`` matches at least one character, so
``DIR/*`` and ``DIR/**`` do not match ``DIR/`` itself, and ``DIR/*`` does
not match ``DIR/sub/`` (a directory's path ends in ``/``)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from corral.policy import globs

from .differential import build_probe
from .vm import CACHE, boot

G = "/srv/g"
FILES = [f"{G}/f", f"{G}/a.txt", f"{G}/ab", f"{G}/sub/f", f"{G}/sub/deep/f", f"{G}/sub/a.txt"]
DIRS = [f"{G}/", f"{G}/sub/", f"{G}/sub/deep/", f"{G}/empty/"]
GLOBS = [
    f"{G}/*", f"{G}/**", f"{G}/", f"{G}/*/", f"{G}/**/", f"{G}/sub/**", f"{G}/sub/*", f"{G}/{{,**}}",
    f"{G}/{{,*}}", f"{G}/a*", f"{G}/*.txt", f"{G}/?b", f"{G}/s*/", f"{G}/s**", f"{G}/*/f", f"{G}/**/f",
    f"{G}/sub/*/", f"{G}/[a-f]*", f"{G}/{{sub,x}}/**", f"{G}/{{a,s}}*", f"{G}/**.txt", f"{G}/sub**",
    f"{G}/*/**", f"{G}/sub/{{,*/}}", f"{G}/[^a]*",
]


@pytest.fixture(scope="module")
def kernel_verdicts(vm_ready: None, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], bool]:
    work = Path(__import__("tempfile").mkdtemp(prefix="globs-", dir=CACHE))
    probe = build_probe(work)
    profiles = []
    for i, glob in enumerate(GLOBS):
        profiles.append(f'profile glob{i} {{\n  "{work}/diff_probe" mr,\n  "{glob}" r,\n}}\n')
    (work / "globs.apparmor").write_text("abi <abi/3.0>,\n" + "".join(profiles))
    ops = " ".join(shlex.quote(f"read:{p}") for p in FILES) + " " + " ".join(shlex.quote(f"list:{d}") for d in DIRS)
    layout = f"mount -t tmpfs tmpfs /srv; mkdir -p {G}/sub/deep {G}/empty; for f in {' '.join(FILES)}; do echo x > $f; done"
    job = [f"exec 2>&1; {layout}", f"apparmor_parser -r --skip-cache {work}/globs.apparmor || echo PARSER-FAILED"]
    for i in range(len(GLOBS)):
        job.append(f"sh -c 'echo \"exec glob{i}\" > /proc/self/attr/exec; exec {work}/diff_probe {ops}' > g{i}.txt 2>&1")
    result = boot("\n".join(job) + "\n", timeout=300)
    assert result.rc == 0, result.console[-2000:]
    assert "PARSER-FAILED" not in result.read("job.log"), result.read("job.log")
    verdicts = {}
    for i, glob in enumerate(GLOBS):
        for line in result.read(f"g{i}.txt").splitlines():
            op, path, answer = line.split("\t")
            assert answer in ("ok", "errno=EACCES"), (glob, line)
            verdicts[(glob, path)] = answer == "ok"
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return verdicts


def test_the_guest_answered_every_pair(kernel_verdicts: dict[tuple[str, str], bool]) -> None:
    assert len(kernel_verdicts) == len(GLOBS) * (len(FILES) + len(DIRS))
    assert any(kernel_verdicts.values()) and not all(kernel_verdicts.values())


@pytest.mark.parametrize("glob", GLOBS)
def test_glob_matching_is_the_kernels(glob: str, kernel_verdicts: dict[tuple[str, str], bool]) -> None:
    wrong = {path: kernel for (g, path), kernel in kernel_verdicts.items() if g == glob and globs.matches(glob, path) != kernel}
    assert not wrong, f"{glob}: the kernel says {wrong}, corral's matcher the opposite"
