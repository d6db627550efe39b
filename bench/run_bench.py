"""What `corral run` costs: start-up, run time, and per system call.

Run:  .venv/bin/python bench/run_bench.py [--runs N]

Measured in one run, each against a baseline from the same run:
  1. start-up: `corral run POLICY -- /bin/true` (cached plan) vs bare `/bin/true`;
  2. run time: the seconds a Python workload (`import json, email, http.client`)
     spends after start, confined vs not, timed inside the workload itself;
  3. per syscall: BPF instructions executed (counted by a small classic-BPF
     interpreter over libseccomp's exported program) and ns/call measured by
     bench/syscall_cost.c, for corral's agent filter and Docker's default
     profile compiled by libseccomp the same way, on setsockopt (filtered by
     argument in corral's filter) and getppid.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from corral import _seccomp  # noqa: E402
from corral.backends.seccomp import emit_bpf  # noqa: E402
from corral.lower import lower  # noqa: E402
from corral.policy import load_policy  # noqa: E402

CORRAL = [str(ROOT / ".venv/bin/corral")]


def _ms(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, from wait4) of one run, in ms.
    CPU time barely moves when other processes share the cores; wall time
    does, so both are printed."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


#: What pip's generated console-script wrapper did before bin/corral replaced
#: it: `import re` first, then corral's main (the same code, the same plan).
PIP_WRAPPER = "import re, sys\nfrom corral.cli import main\nsys.exit(main(sys.argv[1:]))"


def startup(runs: int) -> None:
    # An installed package has bytecode; this environment may forbid writing
    # it (PYTHONDONTWRITEBYTECODE), so compile it once, as pip install does.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src/corral")], check=True, stdout=subprocess.DEVNULL)
    policy = ROOT / "tests/policies/shell.toml"
    subprocess.run([*CORRAL, "run", "-q", str(policy), "--", "true"], check=True)  # warm the plan cache
    run = ["run", "-q", str(policy), "--", "/bin/true"]
    commands = {
        "bare /bin/true": ["/bin/true"],
        "python -c pass (interpreter)": [sys.executable, "-c", "pass"],
        "corral run ... -- /bin/true": [*CORRAL, *run],
        "  the same through pip's wrapper": [sys.executable, "-c", PIP_WRAPPER, *run],
    }
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so a busy moment hits every command alike
        for name, cmd in commands.items():
            w, c = _ms(cmd)
            wall[name].append(w)
            cpu[name].append(c)
    print("1. start-up (median of %d, interleaved): wall ms, then CPU ms (user + system)" % runs)
    bare_wall, bare_cpu = statistics.median(wall["bare /bin/true"]), statistics.median(cpu["bare /bin/true"])
    for name in commands:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        over = f"   wall +{w - bare_wall:.2f} over bare, CPU +{c - bare_cpu:.2f} over bare" if name != "bare /bin/true" else ""
        print(f"   {name:32} {w:7.2f} {c:7.2f}{over}")


WORKLOAD = "import time; t = time.perf_counter(); import json, email, http.client, email.parser, urllib.request; print(time.perf_counter() - t)"


def runtime(runs: int) -> None:
    policy = ROOT / "bench/python-workload.toml"
    python = os.path.realpath(sys.executable)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([*CORRAL, "run", "-q", str(policy), "--", python, "-c", "pass"], check=True, env=env)
    bare, confined = [], []
    for _ in range(runs):  # interleaved, so drift hits both alike
        bare.append(float(subprocess.run([python, "-I", "-c", WORKLOAD], capture_output=True, text=True, check=True, env=env).stdout))
        out = subprocess.run([*CORRAL, "run", "-q", str(policy), "--", python, "-I", "-c", WORKLOAD], capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(f"workload failed under corral run: {out.stderr}")
        confined.append(float(out.stdout))
    b, c = statistics.median(bare) * 1000, statistics.median(confined) * 1000
    print("2. run time: python imports json, email, http.client (no bytecode cache), timed inside (median of %d)" % runs)
    print(f"   unconfined {b:7.2f} ms   confined {c:7.2f} ms   x{c / b:.3f}")


def bpf_steps(program: bytes, nr: int, arch: int, args: list[int]) -> tuple[int, int]:
    """Run a classic BPF seccomp program over seccomp_data; (instructions, action)."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    a = x = 0
    pc = steps = 0
    mem = [0] * 16
    while True:
        code, jt, jf, k = insns[pc]
        steps += 1
        cls = code & 0x07
        if cls == 0x00:  # LD
            if code & 0xE0 == 0x20:  # ABS
                a = struct.unpack_from("<I", data, k)[0]
            elif code & 0xE0 == 0x00:  # IMM
                a = k
            elif code & 0xE0 == 0x60:  # MEM
                a = mem[k]
        elif cls == 0x01:  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k]
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: a + src, 0x10: a - src, 0x20: a * src, 0x40: a | src, 0x50: a & src, 0x60: a << src, 0x70: a >> src, 0xA0: a ^ src}.get(op, a) & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            src = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                pc += k
            else:
                cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: a & src != 0}[op]
                pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return steps, k
        elif cls == 0x07:
            a, x = (x, a) if code & 0x80 else (a, x)
            if code & 0x80:
                a = x
            else:
                x = a
        pc += 1


def docker_bpf() -> bytes:
    lib = _seccomp._lib()
    doc = json.loads((ROOT.parent / "shared/reference/docker-default-seccomp.json").read_text())
    ctx = lib.SyscallFilter(lib.ERRNO(doc.get("defaultErrnoRet", 1)))
    ctx.set_attr(lib.Attr.CTL_OPTIMIZE, 2)
    for entry in doc["syscalls"]:
        inc, exc = entry.get("includes", {}), entry.get("excludes", {})
        if inc.get("caps") or inc.get("minKernel") or exc.get("arches") and "amd64" in exc["arches"] or inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        action = {"SCMP_ACT_ALLOW": lib.ALLOW, "SCMP_ACT_ERRNO": lib.ERRNO(entry.get("errnoRet", 1))}.get(entry["action"])
        if action is None:
            continue
        for name in entry["names"]:
            if _seccomp.resolve(name, "x86_64") < 0:
                continue
            args = [lib.Arg(a["index"], getattr(lib, a["op"].removeprefix("SCMP_CMP_")), a["value"], a.get("valueTwo", 0)) for a in entry.get("args") or []]
            try:
                ctx.add_rule(action, name, *args)
            except OSError:
                pass
    with tempfile.TemporaryFile() as fh:
        ctx.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def per_syscall(iterations: int) -> None:
    agent = emit_bpf(lower(load_policy(ROOT / "examples/agent-http2.toml"))).content
    docker = docker_bpf()
    arch = 0xC000003E
    nr_setsockopt, nr_getppid = _seccomp.resolve("setsockopt", "x86_64"), _seccomp.resolve("getppid", "x86_64")
    print("3. per system call: BPF instructions executed, and ns/call (median of 5 runs)")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "syscall_cost"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "bench/syscall_cost.c")], check=True)
        files = {"none": "-", "corral agent": Path(tmp) / "agent.bpf", "docker default": Path(tmp) / "docker.bpf"}
        files["corral agent"].write_bytes(agent)  # type: ignore[union-attr]
        files["docker default"].write_bytes(docker)  # type: ignore[union-attr]
        results = {}
        for name, path in files.items():
            runs = [list(map(float, subprocess.run([str(exe), str(path), str(iterations)], capture_output=True, text=True, check=True).stdout.split())) for _ in range(5)]
            results[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        base = results["none"]
        for name, program in (("corral agent", agent), ("docker default", docker)):
            s_steps, _ = bpf_steps(program, nr_setsockopt, arch, [3, 6, 1, 0, 4, 0])
            g_steps, _ = bpf_steps(program, nr_getppid, arch, [0] * 6)
            ns = results[name]
            print(f"   {name:15} {len(program) // 8:4} insns | setsockopt(TCP_NODELAY): {s_steps:3} executed, {ns[0]:6.1f} ns (x{ns[0] / base[0]:.2f})"
                  f" | getppid: {g_steps:3} executed, {ns[1]:6.1f} ns (x{ns[1] / base[1]:.2f})")
        print(f"   {'no filter':15}      | setsockopt: {base[0]:6.1f} ns | getppid: {base[1]:6.1f} ns")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=200000)
    args = parser.parse_args()
    startup(args.runs)
    runtime(max(5, args.runs // 2))
    per_syscall(args.iterations)


if __name__ == "__main__":
    main()
