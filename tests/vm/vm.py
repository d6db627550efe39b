"""Boot Debian's own kernel under QEMU (TCG) with the host's root as the
guest's root, run one guest script, and hand its results back.

Why a VM: the test machines' kernels have no AppArmor, and AppArmor is the
backend corral was born for. Debian's 6.1 kernel has AppArmor built in and on
by default (and Landlock ABI 2), so a throwaway guest that sees the host's
files read-only can load and enforce the profiles corral emits, with the
host's own apparmor_parser, python and venv.

How: a busybox initramfs loads the virtio and 9p modules (the package has no
modules.dep, so the order is fixed here), mounts the host's root read-only
over 9p and *moves* it onto / with switch_root. A chroot would leave the
mount at /host in the kernel's view, and AppArmor, which mediates by the
path from the namespace root, would see every path as /host/...: no profile
rule would match and the test would prove nothing. tmpfs goes on /tmp, /run
and /dev/shm; a second, writable 9p share (a fresh host directory) carries
the job script in and the results out, mounted at /run/vm in the guest.

KVM is broken on these machines (an MSR assertion or a hang), so the guest
runs under TCG: a boot takes a few seconds, Python is 10-30x slower than on
the host. Batch many checks in one job script.

Use::

    from .vm import boot          # from a test module in tests/vm/
    result = boot("cat /sys/module/apparmor/parameters/enabled > $VM_OUT/aa\\n")
    result.read("aa")        # 'Y\\n'
    result.rc                # the job's exit status
    result.console           # the serial console (kernel log, job output)

`boot(..., init=PATH)` execs PATH (a program on the host's filesystem) as
PID 1 instead of the job runner, e.g. /lib/systemd/systemd; then the job
script is not run and PATH must power the guest off itself.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The Debian kernel package the guest boots; dev.sh fetches it into CACHE.
KERNEL_PACKAGE_GLOB = "linux-image-6.1.0-*-amd64_*.deb"
#: Where dev.sh caches the kernel package and its extraction (outside the repo:
#: every worktree and CI run shares one download).
CACHE = Path(os.environ.get("CORRAL_VM_CACHE", str(Path.home() / ".cache" / "corral-vm")))
#: Load order of the modules that give the guest its 9p root (no modules.dep).
MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
           "netfs", "fscache", "9pnet", "9pnet_virtio", "9p")
#: The kernel command line; AppArmor made explicit so that dropping it (the
#: proof that the tier tests the kernel) is one edit.
APPEND = "console=ttyS0 panic=-1 quiet loglevel=4 apparmor=1 security=apparmor"
#: Where the writable share is mounted in the guest.
GUEST_OUT = "/run/vm"
#: The checkout under test. The guest puts tmpfs on /tmp, /run and /dev/shm;
#: a checkout under one of them (a CI clone in /tmp) is bound back over it,
#: or the guest would find no venv and no tests.
PROJECT = Path(__file__).resolve().parents[2]
_TMPFS = ("/tmp", "/run", "/dev/shm")


def _keep_project() -> tuple[str, str]:
    """The init lines that carry PROJECT through the tmpfs mounts, if needed."""
    project = str(PROJECT)
    if not any(project == d or project.startswith(d + "/") for d in _TMPFS):
        return "", ""
    return (f"mkdir -p /keep && mount --bind '/newroot{project}' /keep",
            f"mkdir -p '/newroot{project}' && mount --move /keep '/newroot{project}'")


class VMUnavailable(RuntimeError):
    """The VM tier cannot run here (no qemu, no kernel): `bash dev.sh setup` installs both."""


@dataclass
class Kernel:
    vmlinuz: Path
    modules: Path  # .../lib/modules/VERSION/kernel


@dataclass
class GuestResult:
    rc: int | None          # the job's exit status; None if it never finished
    console: str            # the serial console
    out: Path               # the shared directory (job output files)

    def read(self, name: str) -> str:
        return (self.out / name).read_text()


def kernel() -> Kernel:
    """The extracted kernel, extracting the cached package on first use."""
    debs = sorted(CACHE.glob(KERNEL_PACKAGE_GLOB))
    if not debs:
        raise VMUnavailable(f"no {KERNEL_PACKAGE_GLOB} in {CACHE}: run `bash dev.sh setup`")
    deb = debs[-1]
    root = CACHE / deb.name.removesuffix(".deb")
    if not (root / ".extracted").exists():
        tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=".extract-"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        (tmp / ".extracted").touch()
        try:
            tmp.rename(root)
        except OSError:  # another run extracted it first
            shutil.rmtree(tmp, ignore_errors=True)
    vmlinuz = next((root / "boot").glob("vmlinuz-*"))
    modules = next((root / "lib" / "modules").iterdir()) / "kernel"
    return Kernel(vmlinuz, modules)


_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {modules}; do insmod /modules/$m.ko || echo "vm-init: insmod $m failed"; done
mkdir -p /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /newroot || echo "vm-init: no host root"
{keep_before}
for d in tmp run dev/shm; do mount -t tmpfs -o mode=1777 tmpfs /newroot/$d; done
{keep_after}
mkdir -p /newroot{out}
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=262144 out /newroot{out} || echo "vm-init: no out share"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot "$(cat /newroot{out}/init.path)"
echo "vm-init: switch_root failed"
echo o > /proc/sysrq-trigger
"""

# The job runner: PID 1 after switch_root. It runs from the host's
# filesystem with the host's /bin/sh and busybox (busybox-static).
_RUNNER = r"""#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export VM_OUT={out} HOME=/root LANG=C.UTF-8
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
echo 0 > /proc/sys/kernel/printk_ratelimit
ip link set lo up 2>/dev/null || busybox ip link set lo up
cd {out}
sh {out}/job.sh > {out}/job.log 2>&1
echo $? > {out}/job.rc
sync
echo o > /proc/sysrq-trigger
"""


def _initramfs(k: Kernel) -> Path:
    """A gzip'd cpio with busybox, the modules and /init; cached by content."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise VMUnavailable("busybox is not installed: run `bash dev.sh setup`")
    before, after = _keep_project()
    init = _INIT.format(modules=" ".join(MODULES), out=GUEST_OUT, keep_before=before, keep_after=after)
    key = hashlib.sha256(init.encode() + str(k.modules).encode() + Path(busybox).read_bytes()).hexdigest()[:16]
    target = CACHE / f"initramfs-{key}.cpio.gz"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "proc", "sys", "dev", "modules", "newroot"):
            (root / d).mkdir(parents=True)
        shutil.copy(busybox, root / "bin" / "busybox")
        for m in MODULES:
            found = next(k.modules.rglob(f"{m}.ko*"))
            data = found.read_bytes()
            if found.name.endswith(".xz"):
                raise VMUnavailable(f"{found} is compressed; busybox insmod needs a plain .ko")
            (root / "modules" / f"{m}.ko").write_bytes(data)
        (root / "init").write_text(init)
        (root / "init").chmod(0o755)
        files = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files,
                              check=True, capture_output=True).stdout
        part = Path(tmp) / "out.cpio.gz"
        part.write_bytes(gzip.compress(cpio, 6))
        part.rename(target)
    return target


def available() -> str | None:
    """Why the VM tier cannot run here, or None when it can."""
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is not installed"
    try:
        kernel()
    except (VMUnavailable, StopIteration) as e:
        return str(e) or "the kernel package is incomplete"
    return None


def boot(job: str, *, files: dict[str, bytes | str] | None = None, init: str | None = None,
         apparmor: bool | None = None, memory_mb: int = 1024, timeout: float = 600,
         out: Path | None = None) -> GuestResult:
    """Boot the guest, run JOB (a /bin/sh script; $VM_OUT is the shared
    directory, also the job's working directory) and power off.

    FILES are written into the shared directory first. apparmor=False boots
    with AppArmor off (apparmor=0; the default follows
    CORRAL_VM_NO_APPARMOR), which is how the tier proves it tests the
    kernel: checks that need AppArmor must fail then.
    """
    if apparmor is None:  # CORRAL_VM_NO_APPARMOR=1: the proof that the tier tests the kernel
        apparmor = os.environ.get("CORRAL_VM_NO_APPARMOR", "") in ("", "0")
    k = kernel()
    initrd = _initramfs(k)
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise VMUnavailable("qemu-system-x86_64 is not installed: run `bash dev.sh setup`")
    shared = out or Path(tempfile.mkdtemp(prefix="corral-vm-"))
    shared.mkdir(parents=True, exist_ok=True)
    shared.chmod(0o777)
    for name, data in (files or {}).items():
        p = shared / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    (shared / "job.sh").write_text(job)
    (shared / "runner.sh").write_text(_RUNNER.format(out=GUEST_OUT))
    (shared / "runner.sh").chmod(0o755)
    (shared / "init.path").write_text(init or f"{GUEST_OUT}/runner.sh")
    append = APPEND if apparmor else APPEND.replace("apparmor=1 security=apparmor", "apparmor=0")
    console = shared / "console.log"
    cmd = [qemu, "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb), "-smp", "1",
           "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-kernel", str(k.vmlinuz), "-initrd", str(initrd), "-append", append,
           "-serial", f"file:{console}",
           "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={shared},mount_tag=out,security_model=none,multidevs=remap"]
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pass
    rc_file = shared / "job.rc"
    rc = int(rc_file.read_text().strip()) if rc_file.exists() and rc_file.read_text().strip() else None
    text = console.read_text(errors="replace") if console.exists() else ""
    return GuestResult(rc=rc, console=text, out=shared)
