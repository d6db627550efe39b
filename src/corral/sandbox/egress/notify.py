"""seccomp user notification, pidfds and process memory, over ctypes.

Constants and layouts are the kernel's UAPI (linux/seccomp.h, uio.h); the
ioctl numbers are those of x86_64 and aarch64 alike. libseccomp built the
filter; this module only loads it with a listener and talks to that
listener, which pyseccomp's API does not expose.
"""

from __future__ import annotations

import ctypes
import os

from .. import kernel

SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
NR_PIDFD_OPEN, NR_PIDFD_GETFD = 434, 438
NR_PROCESS_VM_READV = {"x86_64": 310, "aarch64": 270}[os.uname().machine]
NR_PROCESS_VM_WRITEV = {"x86_64": 311, "aarch64": 271}[os.uname().machine]

_libc = kernel._libc


class Data(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int), ("arch", ctypes.c_uint32), ("ip", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("data", Data)]


class Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _syscall(nr: int, *args: int) -> int:
    ret = int(_libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def load_with_listener(bpf: bytes) -> int:
    """Install ``bpf`` on the calling thread; return the listener fd."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = kernel._SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    ret = int(_libc.syscall(ctypes.c_long(kernel._NR["seccomp"]), ctypes.c_uint(kernel.SECCOMP_SET_MODE_FILTER), ctypes.c_uint(SECCOMP_FILTER_FLAG_NEW_LISTENER), ctypes.byref(prog)))
    return kernel._check(ret, "seccomp(NEW_LISTENER)")


def pidfd_open(pid: int) -> int:
    return _syscall(NR_PIDFD_OPEN, pid, 0)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """A duplicate of another process's fd (same open file: same socket)."""
    return _syscall(NR_PIDFD_GETFD, pidfd, fd, 0)


def recv(listener: int, notif: Notif) -> bool:
    """Fill ``notif`` with the next notification; False if it vanished."""
    ctypes.memset(ctypes.byref(notif), 0, ctypes.sizeof(notif))
    return int(_libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_RECV), ctypes.byref(notif))) == 0


def respond(listener: int, notif_id: int, val: int = 0, error: int = 0, *, cont: bool = False) -> None:
    """Answer a notification: ``error`` is a positive errno (0: success with
    ``val``); ``cont`` lets the call run as made (only for calls whose
    decision depended on registers alone, never on memory)."""
    resp = Resp(notif_id, val, -error if error else 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE if cont else 0)
    _libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_SEND), ctypes.byref(resp))


def id_valid(listener: int, notif_id: int) -> bool:
    """Whether the notification is still pending: the caller has not died
    and its pid not been reused since we read its memory."""
    value = ctypes.c_uint64(notif_id)
    return int(_libc.ioctl(listener, ctypes.c_ulong(SECCOMP_IOCTL_NOTIF_ID_VALID), ctypes.byref(value))) == 0


def read_memory(pid: int, address: int, size: int) -> bytes:
    """Copy ``size`` bytes of process ``pid``'s memory (our copy is what we decide on)."""
    if size <= 0:
        return b""
    buf = ctypes.create_string_buffer(size)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    remote = _IoVec(address, size)
    got = _syscall(NR_PROCESS_VM_READV, pid, ctypes.addressof(local), 1, ctypes.addressof(remote), 1, 0)
    if got != size:
        raise OSError(14, "short read of the caller's memory")
    return buf.raw


def connect_raw(fd: int, address: bytes) -> int:
    """connect(2) with the exact sockaddr bytes; 0 or a positive errno."""
    buf = ctypes.create_string_buffer(address, len(address))
    if int(_libc.connect(fd, buf, ctypes.c_uint(len(address)))) == 0:
        return 0
    return ctypes.get_errno()


def thread_group(tid: int) -> int:
    """The process (thread group) a notified thread belongs to."""
    with open(f"/proc/{tid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    raise OSError(3, "no such process")


def missing() -> str:
    """What the kernel lacks for the supervisor ("" if nothing): user
    notification with pidfd_getfd, Linux 5.6. ``CORRAL_EGRESS_KERNEL=0``
    pretends it lacks them, to exercise the refusal on a newer kernel."""
    if os.environ.get("CORRAL_EGRESS_KERNEL") == "0":
        return "seccomp user notification with pidfd_getfd (Linux 5.6; CORRAL_EGRESS_KERNEL=0 pretends it is missing)"
    try:
        pidfd = pidfd_open(os.getpid())
    except OSError:
        return "pidfd_open (Linux 5.3)"
    try:
        fd = pidfd_getfd(pidfd, pidfd)
        os.close(fd)
    except OSError:
        return "pidfd_getfd (Linux 5.6)"
    finally:
        os.close(pidfd)
    return ""


# -- the fast path ------------------------------------------------------------
# One notification costs the supervisor a dozen system calls. Through ctypes,
# building argument objects and buffers for each of them cost about as much as
# the calls; these prototypes convert in C and ``Exchange`` allocates once.
_fast = ctypes.CDLL(None, use_errno=True)  # its own function objects: argtypes set here stay here
_ioctl = _fast.ioctl
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_syscall3 = _fast.syscall
_syscall3.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long]
_vm_readv = ctypes.CDLL(None, use_errno=True).syscall
_vm_readv.argtypes = [ctypes.c_long] * 7
_connect = _fast.connect
_connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
MAX_ADDRESS = 128
PIDFD_THREAD = os.O_EXCL
_PIDFDS_KEPT = 256


class Exchange:
    """One receiving thread's side of a listener, allocated once: the
    notification, the answer, the iovecs and buffer of an address copy, and
    pidfds of the program's threads (kept per thread id: a pidfd names one
    task for good, so a kept one either still is that thread or fails with
    ESRCH, never another task — which is why they are kept only when the
    kernel gives thread pidfds, Linux 6.9; before that a pidfd names a
    process, and a reused thread id could name another one)."""

    thread_pidfds: bool | None = None  # PIDFD_THREAD supported? (found on first use)

    def __init__(self, listener: int) -> None:
        self.listener = listener
        self.notif = Notif()
        self.resp = Resp()
        self.valid_id = ctypes.c_uint64()
        self.address = ctypes.create_string_buffer(MAX_ADDRESS)
        self.local = _IoVec(ctypes.addressof(self.address), 0)
        self.remote = _IoVec(0, 0)
        self.pidfds: dict[int, int] = {}
        self._notif, self._resp, self._valid = ctypes.addressof(self.notif), ctypes.addressof(self.resp), ctypes.addressof(self.valid_id)
        self._local, self._remote = ctypes.addressof(self.local), ctypes.addressof(self.remote)

    def recv(self) -> int:
        """Wait for the next notification (blocking in the kernel); 0 or an errno."""
        ctypes.memset(self._notif, 0, ctypes.sizeof(Notif))
        if _ioctl(self.listener, SECCOMP_IOCTL_NOTIF_RECV, self._notif) == 0:
            return 0
        return ctypes.get_errno()

    def respond(self, val: int = 0, error: int = 0) -> None:
        """Answer the notification in hand (never CONTINUE: see supervisor)."""
        r = self.resp
        r.id, r.val, r.error, r.flags = self.notif.id, val, -error if error else 0, 0
        _ioctl(self.listener, SECCOMP_IOCTL_NOTIF_SEND, self._resp)

    def still_valid(self) -> bool:
        self.valid_id.value = self.notif.id
        return _ioctl(self.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, self._valid) == 0

    def read_address(self, address: int, size: int) -> int:
        """Copy ``size`` (at most MAX_ADDRESS) bytes of the caller's memory
        into ``self.address``; then check the notification is still pending
        (the thread id was not reused meanwhile). The copy is what is decided
        on and what the supervisor connects to. Returns the size copied."""
        size = min(size, MAX_ADDRESS)
        if size <= 0:
            return 0
        self.local.len = self.remote.len = size
        self.remote.base = address
        got = _vm_readv(NR_PROCESS_VM_READV, self.notif.pid, self._local, 1, self._remote, 1, 0)
        if got != size:
            raise OSError(ctypes.get_errno() if got < 0 else 14, "cannot copy the caller's address")
        if not self.still_valid():
            raise OSError(3, "the call was abandoned")
        return size

    def connect(self, fd: int, size: int) -> int:
        """connect(2) ``fd`` to the copied address; 0 or a positive errno."""
        if _connect(fd, self.address, size) == 0:
            return 0
        return ctypes.get_errno()

    def take_fd(self, fd: int) -> int:
        """A duplicate of the caller's ``fd`` (pidfd_getfd through a kept
        pidfd); -1 if the caller is gone."""
        tid = self.notif.pid
        pidfd = self.pidfds.get(tid)
        if pidfd is not None:
            got = _syscall3(NR_PIDFD_GETFD, pidfd, fd, 0)
            if got >= 0:
                return int(got)
            err = ctypes.get_errno()
            if err != 3:  # ESRCH: that thread is gone and its id reused; anything else is the answer
                raise OSError(err, os.strerror(err))
            del self.pidfds[tid]
            os.close(pidfd)
        try:
            pidfd = self._open(tid)
        except OSError:
            return -1  # the caller is gone
        try:
            return pidfd_getfd(pidfd, fd)
        finally:
            if Exchange.thread_pidfds:
                if len(self.pidfds) >= _PIDFDS_KEPT:
                    self.close()
                self.pidfds[tid] = pidfd
            else:
                os.close(pidfd)

    @staticmethod
    def _open(tid: int) -> int:
        if Exchange.thread_pidfds is not False:
            try:
                pidfd = os.pidfd_open(tid, PIDFD_THREAD)
                Exchange.thread_pidfds = True
                return pidfd
            except OSError as exc:
                if exc.errno != 22:  # EINVAL: no PIDFD_THREAD (before Linux 6.9)
                    raise
                Exchange.thread_pidfds = False
        return pidfd_open(thread_group(tid))

    def close(self) -> None:
        for pidfd in self.pidfds.values():
            os.close(pidfd)
        self.pidfds.clear()

