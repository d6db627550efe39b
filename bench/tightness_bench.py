"""How tight are traced policies? Allowed vs used system calls, per program.

Run:  .venv/bin/python bench/tightness_bench.py

Traces real programs with `corral trace` (tar extracting an archive, git
committing, curl fetching from a local server, Python importing modules,
and the programs of tests/adversarial/test_learned_policies.py: sqlite3,
gzip, xz, zstd, jq, ImageMagick's convert, rsync, openssl, perl, sed, zip,
find), then counts the system calls each generated policy allows (after
lowering: flags expanded) against the ones the program used, and against
Docker's default profile (its unconditional allow list). The bound learning
keeps is 1.25x (``learn.synth.MAX_WIDENING``); a program over it is marked.
A program that is not installed is skipped and says so.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from corral.learn.events import Syscall  # noqa: E402
from corral.learn.synth import MAX_WIDENING  # noqa: E402
from corral.learn.trace import trace  # noqa: E402
from corral.lower import lower  # noqa: E402
from corral.policy import load_policy_text  # noqa: E402


def docker_unconditional() -> int:
    doc = json.loads((ROOT.parent / "shared/reference/docker-default-seccomp.json").read_text())
    return len({n for e in doc["syscalls"] if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args") and not e.get("includes") for n in e["names"]})


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="corral-tight-", dir="/srv" if os.access("/srv", os.W_OK) else None))
    (work / "src/a").mkdir(parents=True)
    (work / "src/a/x").write_text("x")
    subprocess.run(["tar", "-C", str(work), "-cf", str(work / "in.tar"), "src"], check=True)
    (work / "out").mkdir()
    repo = work / "repo"
    env = {**os.environ, "HOME": str(work), "GIT_CONFIG_NOSYSTEM": "1"}
    git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True, env=env)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(work))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update(HOME=str(work), GIT_CONFIG_NOSYSTEM="1")
    programs = {
        "tar -x": ["tar", "-C", str(work / "out"), "-xf", str(work / "in.tar")],
        "git commit": [*git, "commit", "-q", "-m", "m"],
        "curl (local http)": ["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{server.server_port}/in.tar"],
        "python imports": [os.path.realpath(sys.executable), "-I", "-c", "import json, email, http.client"],
        "sqlite3": ["sqlite3", str(work / "db.sqlite"), "create table t(x); insert into t values(1); select * from t;"],
        "gzip": ["gzip", "-k", "-f", str(work / "data.txt")],
        "xz -T2": ["xz", "-T2", "-k", "-f", str(work / "data.txt")],
        "zstd": ["zstd", "-q", "-f", str(work / "data.txt"), "-o", str(work / "data.zst")],
        "jq": ["jq", ".a", str(work / "in.json")],
        "convert": ["/usr/bin/convert", str(work / "in.png"), str(work / "out.png")],
        "rsync -a": ["rsync", "-a", f"{work}/src/", f"{work}/copy/"],
        "openssl enc": ["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:k", "-in", str(work / "data.txt"), "-out", str(work / "data.enc")],
        "perl -pi": ["perl", "-pi", "-e", "s/a/b/", str(work / "data.txt")],
        "sed -i": ["sed", "-i", "s/b/c/", str(work / "data.txt")],
        "zip": ["zip", "-q", str(work / "out.zip"), str(work / "data.txt")],
        "find": ["find", str(work / "src"), "-type", "f"],
    }
    (work / "data.txt").write_text("abc\n" * 1000)
    (work / "in.json").write_text('{"a": 1}')
    if os.path.exists("/usr/bin/convert"):
        subprocess.run(["/usr/bin/convert", "-size", "8x8", "xc:red", str(work / "in.png")], check=False, capture_output=True)
    docker = docker_unconditional()
    print(f"{'program':20} {'used':>5} {'allowed':>8} {'allowed/used':>13} {'docker/used':>12}")
    over = []
    for name, cmd in programs.items():
        if shutil.which(cmd[0]) is None:
            print(f"{name:20} (not installed: skipped)")
            continue
        text, collected, status = trace(cmd, cwd=str(work))
        used = len({e.name for e in collected.events if isinstance(e, Syscall)})
        allowed = len(lower(load_policy_text(text, "traced.toml")).syscalls)
        mark = "" if allowed / used <= MAX_WIDENING else f"  over {MAX_WIDENING}x"
        if mark:
            over.append(name)
        print(f"{name:20} {used:5} {allowed:8} {allowed / used:13.2f} {docker / used:12.2f}{mark}")
    print(f"over the {MAX_WIDENING}x bound: {', '.join(over) or 'none'}")
    print(f"docker default profile: {docker} system calls allowed unconditionally")
    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
