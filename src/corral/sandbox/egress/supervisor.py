"""The egress supervisor: fork, hand over the listener, answer notifications.

corral forks. The child confines itself (Landlock with the signal scope,
capabilities, no_new_privs), installs the policy's filter in which every
call that can name a peer (connect, sendto with an address, sendmsg,
sendmmsg) is a user notification, and execs the program. The parent — the
supervisor, outside the sandbox, not dumpable, out of the program's reach
because Landlock stops a sandboxed process from signalling or ptracing
anything outside its domain — takes the listener with pidfd_getfd and
answers each call:

- nothing is ever answered CONTINUE: the kernel would look the descriptor
  number up again, and another thread of the program can swap a different
  socket onto it in between (a UDP socket under a checked TCP or unix one
  sends anywhere, past Landlock, which does not mediate UDP). Every call is
  carried out by the supervisor on the very socket it examined (the file
  pidfd_getfd gave it), from copies of the program's memory;
- on a socket that is not IPv4/IPv6, connect, and sends naming an address or
  carrying control messages (file descriptors, credentials), are refused:
  done by the supervisor they would escape the program's Landlock domain
  and credentials. Plain sendmsg without either is carried out;
- TCP ``sendto``/``sendmsg`` ignore an address unless MSG_FASTOPEN is set:
  without it the supervisor sends the data itself (the address dropped),
  with it they are refused (Fast Open would connect before any check);
- ``connect``: the supervisor copies the address from the program's memory,
  decides on its copy (``rules``), and connects the program's own socket
  (pidfd_getfd) itself — to the peer, or to the TLS relay for a name. The
  result, EINPROGRESS for a non-blocking socket included, is the answer;
- UDP sends with an address are made by the supervisor too, from copies of
  the address and the data;
- while it serves, the supervisor's effective capabilities are the
  program's (plus CAP_SYS_PTRACE, to reach a program that is not dumpable):
  the kernel checks a control message against the sender, and corral as
  root would otherwise lend the program CAP_NET_ADMIN/CAP_NET_RAW (SO_MARK,
  SO_PRIORITY above 6, IPv6 hop-by-hop options) it was stripped of.

Nothing is ever let through after checking memory the program could still
change.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

from .. import kernel
from . import notify
from .relay import Relay, stderr_report
from .rules import Resolver, Rules

MSG_FASTOPEN = 0x20000000
PR_SET_DUMPABLE = 4
CAP_SYS_PTRACE = 19
_MAX_ADDR, _MAX_DATA, _MAX_MMSG = notify.MAX_ADDRESS, 1 << 16, 64
#: Threads receiving notifications, when none is in a call that may block;
#: at most this many in all (more calls wait in the kernel).
RECEIVERS, MAX_RECEIVERS = 2, 64
_DECISIONS_KEPT = 4096
_CMSG_HDR = 16  # struct cmsghdr on 64-bit Linux: size_t len, int level, int type
#: Control messages an IP send may carry through the supervisor: where the
#: packet leaves from (PKTINFO: a local address; another host's needs
#: IP_TRANSPARENT, which guard forged-packets refuses), its TTL/hop limit,
#: traffic class, fragmentation, UDP segmentation, priority, mark (checked
#: against the program's capabilities, which the supervisor serves with)
#: and transmit time. Not IP_RETOPTS or an IPv6 routing header: a source
#: route sends the packet to its first hop, not to the peer just checked;
#: nor anything unknown. (level, type) pairs.
_IP_CONTROL = frozenset({
    (socket.SOL_IP, 1), (socket.SOL_IP, 2), (socket.SOL_IP, 8),  # IP_TOS, IP_TTL, IP_PKTINFO
    (socket.IPPROTO_IPV6, 2), (socket.IPPROTO_IPV6, 8),  # IPV6_2292PKTINFO, IPV6_2292HOPLIMIT
    (socket.IPPROTO_IPV6, 50), (socket.IPPROTO_IPV6, 52), (socket.IPPROTO_IPV6, 62), (socket.IPPROTO_IPV6, 67),  # IPV6_PKTINFO, _HOPLIMIT, _DONTFRAG, _TCLASS
    (socket.SOL_UDP, 103),  # UDP_SEGMENT
    (socket.SOL_SOCKET, 12), (socket.SOL_SOCKET, 36), (socket.SOL_SOCKET, 37), (socket.SOL_SOCKET, 61),  # SO_PRIORITY, SO_MARK, SO_TIMESTAMPING, SCM_TXTIME
})  # fmt: skip
#: Why the supervisor makes no unix connect or send with an address (docs/egress.md).
_NO_PATHS = (
    "refused under the egress supervisor: made by it, the socket path (or abstract name) would be resolved outside the "
    "program's Landlock domain, mount namespace, root and credentials, and letting the program make the call after the check "
    "would let another thread swap an unchecked socket onto the descriptor"
)
_libc = kernel._libc


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int),
    ]  # fmt: skip


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def parse_sockaddr(raw: bytes) -> tuple[int, str, int]:
    """(family, address, port) of an AF_INET/AF_INET6 sockaddr; family only otherwise."""
    family = struct.unpack("=H", raw[:2])[0] if len(raw) >= 2 else -1
    if family == socket.AF_INET and len(raw) >= 8:
        return family, socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack("!H", raw[2:4])[0]
    if family == socket.AF_INET6 and len(raw) >= 24:
        return family, socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]
    if family in (socket.AF_INET, socket.AF_INET6):
        return -1, "", 0  # too short to hold its address: the kernel would say EINVAL
    return family, "", 0


def sockaddr(family: int, ip: str, port: int) -> bytes:
    if family == socket.AF_INET6:
        return struct.pack("=H", family) + struct.pack("!HI", port, 0) + socket.inet_pton(socket.AF_INET6, ip) + struct.pack("=I", 0)
    return struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_pton(socket.AF_INET, ip) + b"\0" * 8


def _hung_up(listener: int) -> bool:
    """Whether the listener's filter has no task left (POLLHUP)."""
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    return any(event & select.POLLHUP for _, event in poller.poll(0))


def _control_messages(control: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(level, type, data) of each control message, walked as the kernel
    walks them (CMSG_NXTHDR: 8-byte aligned lengths). Raises OSError(EINVAL)
    at a malformed one, as sendmsg would."""
    pos = 0
    while pos + _CMSG_HDR <= len(control):
        length, level, kind = struct.unpack_from("=Qii", control, pos)
        if length < _CMSG_HDR or pos + length > len(control):
            raise OSError(errno.EINVAL, "a malformed control message")
        yield level, kind, control[pos + _CMSG_HDR : pos + length]
        pos += (length + 7) & ~7


def _unlisted_control(control: bytes) -> str:
    """The first control message of an IP send not in ``_IP_CONTROL``
    ("level L type T", or "malformed"), "" when all are listed."""
    try:
        return next((f"level {level} type {kind}" for level, kind, _ in _control_messages(control) if (level, kind) not in _IP_CONTROL), "")
    except OSError:
        return "malformed"


def _call(ret: int) -> tuple[int, int]:
    """(value, errno) of a libc call's return."""
    return (ret, 0) if ret >= 0 else (0, ctypes.get_errno())


class Supervisor:
    """The rules, the relay (listening before the fork, so the child knows
    its port) and, once attached, the program and its listener."""

    def __init__(self, plan: dict[str, Any]) -> None:
        hosts_file = os.environ.get("CORRAL_EGRESS_HOSTS")  # test-only: docs/egress.md
        self.rules = Rules(plan["egress"], Resolver(hosts_file))
        self.relay = Relay(self.rules, stderr_report)
        self.rules.relay = self.relay.addresses()
        self.child, self.listener = 0, -1
        self.caps = sum(1 << cap for cap in set(plan["caps"])) | (1 << CAP_SYS_PTRACE)
        self.ip_options_lifted = bool(plan.get("ip_control_lifted"))
        self.pool = threading.Lock()
        self.receivers = self.blocked = 0  # receiving threads; of them, in a call that may block
        self.decisions: dict[tuple[int, str, bytes, bool], tuple[str, Any]] = {}
        nrs = plan["egress_calls"]
        self.handlers = {nrs["connect"]: self.on_connect, nrs["sendto"]: self.on_sendto, nrs["sendmsg"]: self.on_sendmsg, nrs["sendmmsg"]: self.on_sendmmsg}

    def confine_ports(self) -> None:
        """Put the supervisor's own connects under the policy's TCP ports
        (and the relay's) with Landlock: the kernel's floor under its
        decisions, since the program's connects are now made by it, outside
        the program's Landlock domain. Not when a rule allows every port.
        Called before the fork: a Landlock domain may only reach (ptrace,
        pidfd_getfd, process_vm_readv) processes in domains nested in its own."""
        doc = self.rules
        ports = {r["port"] for r in (*doc.connect, *doc.hosts) if r["protocol"] == "tcp"}
        if not ports or 0 in ports or kernel.landlock_abi() < 4:
            return
        connect_tcp = kernel.mask(["connect_tcp"], kernel.NET_BITS, 4)
        ruleset = kernel.landlock_create(0, connect_tcp, 0, 4)
        try:
            for port in sorted(ports | {self.relay.port}):
                kernel.landlock_add_port(ruleset, port, connect_tcp)
            kernel.set_no_new_privs()
            kernel.landlock_restrict(ruleset)
        finally:
            os.close(ruleset)

    def close(self) -> None:
        """Stop the relay's listeners (a probe's supervisor outlives its probe)."""
        for s in self.relay.listeners:
            s.close()

    # -- the loop ---------------------------------------------------------
    def serve(self) -> int:
        """Answer notifications until the program exits; its wait status.

        Capabilities are per thread and a new thread inherits its creator's:
        lowering this thread's effective set before any serving thread
        starts lowers them all. The permitted set stays, so the effective
        set comes back afterwards (verify serves probe after probe)."""
        effective, permitted, inheritable = kernel.capget()
        kernel.capset(effective & self.caps, permitted, inheritable)
        try:
            return self._serve()
        finally:
            kernel.capset(effective, permitted, inheritable)

    def _serve(self) -> int:
        """Start the receivers; wait for the program.

        Each receiver blocks in the kernel on the listener (no poll loop:
        one wake-up per call) and answers the call it received itself, so
        nothing is handed between threads on the way. A call that may block
        (a blocking socket's connect or send) keeps its receiver; another
        one is started first if none would be left. Since Linux 6.6 a
        receiver's wait ends when the program's last task is gone; before,
        the receivers stay blocked until corral exits (each on its own copy
        of the listener, which no later probe can reuse)."""
        self.relay.start()
        with self.pool:
            for _ in range(RECEIVERS):
                self._spawn()
        _, status = os.waitpid(self.child, 0)
        return status

    def _spawn(self, *, spare: bool = False) -> None:
        """Start one more receiver (``self.pool`` held). A spare that cannot
        be started (no descriptor or thread left) is done without: the call
        in hand is still answered, and later calls wait for a receiver."""
        try:
            listener = os.dup(self.listener)
        except OSError:
            if spare:
                return
            raise
        try:
            threading.Thread(target=self._receive, args=(listener,), daemon=True).start()
        except RuntimeError:
            os.close(listener)
            if spare:
                return
            raise
        self.receivers += 1

    def _receive(self, listener: int) -> None:
        ex = notify.Exchange(listener)
        try:
            while True:
                err = ex.recv()
                if err == errno.EINTR or (err == errno.ENOENT and not _hung_up(listener)):
                    continue  # a signal; or the caller died while its call waited
                if err or self.dispatch(ex):
                    return
        finally:
            ex.close()
            os.close(listener)

    def dispatch(self, ex: notify.Exchange) -> bool:
        """Answer one call; True when this receiver is one too many and leaves."""
        n = ex.notif
        handler = self.handlers.get(n.data.nr)
        if handler is None:
            ex.respond(error=errno.EPERM)
            return False
        try:
            fd = ex.take_fd(int(n.data.args[0]) & 0x7FFFFFFF)
        except OSError as exc:
            ex.respond(error=exc.errno if exc.errno == errno.EBADF else errno.ENOTSOCK)
            return False
        if fd < 0:
            return False  # the caller is gone
        blocking = os.get_blocking(fd)
        if blocking:
            with self.pool:
                self.blocked += 1
                if self.receivers - self.blocked < 1 and self.receivers < MAX_RECEIVERS:
                    self._spawn(spare=True)
        answer = None
        try:
            answer = handler(ex, fd)
        except OSError as exc:
            ex.respond(error=exc.errno or errno.EPERM)
        except Exception as exc:  # noqa: BLE001 - one bad call must not stop the supervisor
            self.deny(n, f"egress supervisor: internal error, call refused: {exc!r}", errno.EPERM)
        finally:
            os.close(fd)
        if answer is not None:
            # answered last: the caller may run at once, on this CPU, and
            # this receiver has nothing left to do but wait for the next call
            ex.respond(error=answer)
        if not blocking:
            return False
        with self.pool:
            self.blocked -= 1
            leave = self.receivers - self.blocked > RECEIVERS
            self.receivers -= leave
        return leave

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def kind(fd: int) -> tuple[int, str]:
        """(family, "tcp"/"udp"/other type) of the socket behind ``fd``."""
        s = socket.socket(fileno=fd)
        try:
            family, stype, proto = s.family, s.type, s.proto
        finally:
            s.detach()
        if stype == socket.SOCK_STREAM and proto in (0, socket.IPPROTO_TCP, 262):  # 262: MPTCP
            return family, "tcp"
        if stype == socket.SOCK_DGRAM and proto in (0, socket.IPPROTO_UDP, 136):  # 136: UDP-Lite
            return family, "udp"
        return family, f"socket type {int(stype)} protocol {proto}"

    def read(self, n: notify.Notif, address: int, size: int) -> bytes:
        data = notify.read_memory(n.pid, address, size)
        if not notify.id_valid(self.listener, n.id):
            raise OSError(errno.ESRCH, "the call was abandoned")
        return data

    def caller_pidfd(self, n: notify.Notif) -> int:
        """A pidfd of the calling thread, the call checked still pending
        *after* it is opened: a pidfd names one task for good, but the
        thread id it was opened by may meanwhile name another process (the
        caller killed, its id reused), whose files the supervisor would then
        take and pass to the program."""
        pidfd = notify.Exchange._open(n.pid)
        if not notify.id_valid(self.listener, n.id):
            os.close(pidfd)
            raise OSError(errno.ESRCH, "the call was abandoned")
        return pidfd

    def write(self, n: notify.Notif, address: int, data: bytes) -> None:
        """Write DATA into the caller's memory: through /proc/TID/mem opened
        first and the call checked still pending after (the open file stays
        that task's memory), never by a thread id alone, which another
        process may have taken since."""
        mem = os.open(f"/proc/{n.pid}/mem", os.O_WRONLY | os.O_CLOEXEC)
        try:
            if not notify.id_valid(self.listener, n.id):
                raise OSError(errno.ESRCH, "the call was abandoned")
            if os.pwrite(mem, data, address) != len(data):
                raise OSError(errno.EFAULT, "short write to the caller's memory")
        finally:
            os.close(mem)

    def deny(self, n: notify.Notif, reason: str, err: int = errno.EACCES) -> None:
        stderr_report(reason)
        notify.respond(self.listener, n.id, error=err)

    def decide(self, n: notify.Notif, fd: int, raw: bytes, kind: tuple[int, str] | None = None, *, send: bool = False) -> tuple[str, Any] | None:
        """("direct"|"relay"|"proxy", decision) for an address, or None once denied.

        AF_UNSPEC is no peer for connect (it dissolves an association) and
        for an IPv6 send (the address is dropped), but an IPv4 send reads it
        as AF_INET and goes to the address that follows: decided as that."""
        family, proto = kind or self.kind(fd)
        afam, ip, port = parse_sockaddr(raw)
        if afam == socket.AF_UNSPEC and send and family == socket.AF_INET:
            afam, ip, port = parse_sockaddr(struct.pack("=H", socket.AF_INET) + raw[2:])
        elif afam == socket.AF_UNSPEC:
            return "direct", None
        if afam not in (socket.AF_INET, socket.AF_INET6):
            notify.respond(self.listener, n.id, error=errno.EAFNOSUPPORT if len(raw) >= 2 and afam != -1 else errno.EINVAL)
            return None
        if proto not in ("tcp", "udp"):
            self.deny(n, f"{ip}:{port}: {proto}: the supervisor decides TCP and UDP peers only", errno.EPERM)
            return None
        key = (family, proto, raw, send)
        kept = self.decisions.get(key)
        if kept is not None:
            return kept
        lookups = self.rules.resolver.lookups
        d = self.rules.decide(proto, ip, port)
        if d.action == "deny":
            self.deny(n, d.reason, errno.EACCES if proto == "tcp" else errno.EPERM)
            return None
        decided = d.action, (family, ip, port, d)
        if self.rules.resolver.lookups == lookups:
            # decided by the policy alone (no name was looked up): the same
            # bytes get the same answer for as long as the policy holds
            if len(self.decisions) >= _DECISIONS_KEPT:
                self.decisions.clear()
            self.decisions[key] = decided
        return decided

    # -- connect ----------------------------------------------------------
    def on_connect(self, ex: notify.Exchange, fd: int) -> int | None:
        """Connect the caller's socket from our copy of its address; the
        errno to answer with (None: answered already)."""
        n = ex.notif
        kind = self.kind(fd)
        family = kind[0]
        if family not in (socket.AF_INET, socket.AF_INET6):
            self.deny(n, f"connect on a socket of family {family}: {_NO_PATHS}", errno.EPERM)
            return None
        size = ex.read_address(int(n.data.args[1]), int(n.data.args[2]))
        raw = ctypes.string_at(ex.address, size)  # our copy: decided on, and connected to
        decided = self.decide(n, fd, raw, kind)
        if decided is None:
            return None
        action, detail = decided
        if action == "relay":
            _, ip, port, _ = detail
            err = notify.connect_raw(fd, sockaddr(family, *self.relay.sockaddr_for(family)[:2]))
            if err in (0, errno.EINPROGRESS):
                self.relay.expect(self._local(fd), "relay", ip, port)
            return err
        if action == "proxy":
            err = ex.connect(fd, size)
            if err in (0, errno.EINPROGRESS):
                self.relay.expect(self._local(fd), "proxy", "", 0)
            return err
        return ex.connect(fd, size)  # a blocking one holds this receiver only (dispatch)

    @staticmethod
    def _local(fd: int) -> tuple[str, int]:
        from .rules import plain

        s = socket.socket(fileno=fd)
        try:
            local = s.getsockname()
        finally:
            s.detach()
        return str(plain(local[0])), local[1]

    # -- sends ------------------------------------------------------------
    def _answer(self, n: notify.Notif, fd: int, work: "Any") -> None:
        """Run ``work(fd) -> (value, errno)`` and answer with it (on a
        blocking socket this receiver waits; dispatch saw to it that another
        receives meanwhile)."""
        notif_id = n.id
        try:
            val, err = work(fd)
            if err >= 0:  # -1: already answered (denied)
                notify.respond(self.listener, notif_id, val=val, error=err)
        except OSError as exc:
            notify.respond(self.listener, notif_id, error=exc.errno or errno.EPERM)
        except Exception as exc:  # noqa: BLE001 - a call is never left unanswered
            stderr_report(f"egress supervisor: internal error, call refused: {exc!r}")
            notify.respond(self.listener, notif_id, error=errno.EPERM)

    def _refuse_fastopen(self, n: notify.Notif, call: str) -> None:
        self.deny(n, f"TCP Fast Open ({call} with MSG_FASTOPEN) would connect before the supervisor sees the peer: connect() first", errno.EPERM)

    def on_sendto(self, ex: notify.Exchange, fd: int) -> None:
        n = ex.notif
        family, proto = self.kind(fd)
        flags = int(n.data.args[3]) & 0xFFFFFFFF
        if family not in (socket.AF_INET, socket.AF_INET6):
            self.deny(n, f"sendto with an address on a socket of family {family}: {_NO_PATHS}", errno.EPERM)
            return
        if proto == "tcp":
            if flags & MSG_FASTOPEN:
                self._refuse_fastopen(n, "sendto")
                return
            self._answer(n, fd, lambda f: self._sendto(n, f, flags, b"", stream=True))
            return
        raw = self.read(n, int(n.data.args[4]), min(int(n.data.args[5]), _MAX_ADDR))
        if self.decide(n, fd, raw, send=True) is None:
            return
        self._answer(n, fd, lambda f: self._sendto(n, f, flags, raw, stream=False))

    def _sendto(self, n: notify.Notif, fd: int, flags: int, raw: bytes, *, stream: bool) -> tuple[int, int]:
        """sendto(2) of a copy of the program's data; TCP without its address
        (TCP ignores it), at most ``_MAX_DATA`` bytes (a short write, which a
        stream allows); a larger datagram is EMSGSIZE."""
        size = int(n.data.args[2])
        if size > _MAX_DATA:
            if not stream:
                return 0, errno.EMSGSIZE
            size = _MAX_DATA
        data = self.read(n, int(n.data.args[1]), size)
        buf = ctypes.create_string_buffer(data, max(1, len(data)))
        addr = ctypes.create_string_buffer(raw, max(1, len(raw)))
        return _call(int(_libc.sendto(fd, buf, ctypes.c_size_t(len(data)), flags, addr if raw else None, ctypes.c_uint(len(raw)))))

    def _sendmsg_allowed(self, n: notify.Notif, family: int, proto: str, flags: int, call: str) -> bool:
        if proto == "tcp" and flags & MSG_FASTOPEN:
            self._refuse_fastopen(n, call)
            return False
        return True

    def on_sendmsg(self, ex: notify.Exchange, fd: int) -> None:
        n = ex.notif
        family, proto = self.kind(fd)
        flags = int(n.data.args[2]) & 0xFFFFFFFF
        if self._sendmsg_allowed(n, family, proto, flags, "sendmsg"):
            self._answer(n, fd, lambda f: self._send_one(n, f, int(n.data.args[1]), flags, family, proto))

    def on_sendmmsg(self, ex: notify.Exchange, fd: int) -> None:
        n = ex.notif
        family, proto = self.kind(fd)
        flags = int(n.data.args[3]) & 0xFFFFFFFF
        if self._sendmsg_allowed(n, family, proto, flags, "sendmmsg"):
            self._answer(n, fd, lambda f: self._send_many(n, f, flags, family, proto))

    def _send_many(self, n: notify.Notif, fd: int, flags: int, family: int, proto: str) -> tuple[int, int]:
        base, count = int(n.data.args[1]), min(int(n.data.args[2]), _MAX_MMSG)
        sent = 0
        for i in range(count):
            val, err = self._send_one(n, fd, base + 64 * i, flags, family, proto)
            if err < 0:
                return 0, -1  # already answered (denied)
            if err:
                return (sent, 0) if sent else (0, err)
            self.write(n, base + 64 * i + 56, struct.pack("=I", val))
            sent += 1
        return sent, 0

    def _send_one(self, n: notify.Notif, fd: int, header: int, flags: int, family: int, proto: str) -> tuple[int, int]:
        """Send one msghdr of the program's from copies; (bytes, errno), errno -1 once denied.

        TCP drops the address (ignored without Fast Open) and may write
        short; a socket that is not IP may neither name an address nor carry
        control messages (they would be the supervisor's, not the program's)."""
        hdr = _MsgHdr.from_buffer_copy(self.read(n, header, ctypes.sizeof(_MsgHdr)))
        ip = family in (socket.AF_INET, socket.AF_INET6)
        if not ip and hdr.name:
            self.deny(n, f"sendmsg with an address on a socket of family {family}: {_NO_PATHS}", errno.EPERM)
            return 0, -1
        if not ip and hdr.controllen and family != socket.AF_UNIX:
            self.deny(n, f"sendmsg with control messages on a socket of family {family}: refused under the egress supervisor (they would be the supervisor's)", errno.EPERM)
            return 0, -1
        name = b""
        if hdr.name and proto != "tcp":
            name = self.read(n, int(hdr.name or 0), min(int(hdr.namelen), _MAX_ADDR))
            if self.decide(n, fd, name, send=True) is None:
                return 0, -1
        if hdr.iovlen > 1024 or hdr.controllen > 4096:
            return 0, errno.EMSGSIZE
        iovs = (_IoVec * max(1, hdr.iovlen)).from_buffer_copy(self.read(n, int(hdr.iov or 0), ctypes.sizeof(_IoVec) * hdr.iovlen)) if hdr.iovlen else (_IoVec * 1)()
        budget = _MAX_DATA
        if sum(int(v.len) for v in iovs[: hdr.iovlen]) > _MAX_DATA and not (ip and proto == "tcp"):
            return 0, errno.EMSGSIZE
        lengths = []
        for v in iovs[: hdr.iovlen]:
            lengths.append(min(int(v.len), budget))  # a stream may write short
            budget -= lengths[-1]
        keep = [ctypes.create_string_buffer(self.read(n, int(v.base or 0), size) or b"\0", max(1, size)) for v, size in zip(iovs[: hdr.iovlen], lengths)]
        local = (_IoVec * max(1, hdr.iovlen))()
        for i, (b, size) in enumerate(zip(keep, lengths)):
            local[i].base, local[i].len = ctypes.cast(b, ctypes.c_void_p), size
        name_buf = ctypes.create_string_buffer(name, max(1, len(name)))
        raw_control = self.read(n, int(hdr.control or 0), int(hdr.controllen))
        passed: list[int] = []
        try:
            if not ip and raw_control:
                translated = self._unix_rights(n, raw_control)
                if translated is None:
                    return 0, -1  # denied
                raw_control, passed = translated
            if ip and raw_control and not self.ip_options_lifted:
                refused = _unlisted_control(raw_control)
                if refused:
                    self.deny(n, f"sendmsg with control message {refused}: refused under the egress supervisor (it could route or forge the packet past the address just checked; flag raw-packets lifts it)", errno.EPERM)
                    return 0, -1
            control = ctypes.create_string_buffer(raw_control or b"\0", max(1, len(raw_control)))
            mine = _MsgHdr(
                ctypes.cast(name_buf, ctypes.c_void_p) if name else None, len(name), ctypes.cast(local, ctypes.c_void_p), hdr.iovlen,
                ctypes.cast(control, ctypes.c_void_p) if raw_control else None, len(raw_control), 0,
            )  # fmt: skip
            return _call(int(_libc.sendmsg(fd, ctypes.byref(mine), flags)))
        finally:
            for mine_fd in passed:
                os.close(mine_fd)

    def _unix_rights(self, n: notify.Notif, control: bytes) -> tuple[bytes, list[int]] | None:
        """The program's control messages for a unix socket, with each file
        descriptor of an SCM_RIGHTS message replaced by the supervisor's copy
        of the same open file (pidfd_getfd: what the kernel would pass; no
        path is resolved). Anything else — SCM_CREDENTIALS, which the kernel
        would check against the supervisor, not the program — is refused
        (None once denied). Raises OSError(EBADF) for a descriptor the
        program does not have, as sendmsg would."""
        out = b""
        passed: list[int] = []
        try:
            for level, kind, data in _control_messages(control):
                if (level, kind) != (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    self.deny(n, f"sendmsg on a unix socket with control message (level {level}, type {kind}): only SCM_RIGHTS is passed on under the egress supervisor (credentials would be the supervisor's)", errno.EPERM)
                    for mine in passed:
                        os.close(mine)
                    return None
                numbers = struct.unpack(f"={len(data) // 4}i", data[: len(data) // 4 * 4])
                pidfd = self.caller_pidfd(n)  # the calling thread (its file table)
                try:
                    for number in numbers:
                        passed.append(notify.pidfd_getfd(pidfd, number))
                finally:
                    os.close(pidfd)
                ours = struct.pack(f"={len(numbers)}i", *passed[-len(numbers) :]) if numbers else b""
                body = struct.pack("=Qii", _CMSG_HDR + len(ours), level, kind) + ours
                out += body + b"\0" * (-len(body) % 8)
        except OSError:
            for mine in passed:
                os.close(mine)
            raise
        return out, passed


def run_supervised(plan: dict[str, Any], report: Any, path: str, cmd: list[str], *, proxy_env: bool = False) -> int:
    """Run CMD as a supervised child; pass its exit status on."""
    from ..apply import SandboxError
    from ..handoff import fork_confined

    try:
        supervisor = Supervisor(plan)
    except OSError as exc:
        raise SandboxError(f"egress supervisor: {exc}") from None
    env = dict(os.environ)
    env["CORRAL_EGRESS_PROXY"] = f"http://127.0.0.1:{supervisor.relay.port}"
    if proxy_env:
        for var in ("https_proxy", "HTTPS_PROXY", "grpc_proxy"):
            env[var] = env["CORRAL_EGRESS_PROXY"]
        env.pop("no_proxy", None)
        env.pop("NO_PROXY", None)
    supervisor.confine_ports()  # before the fork: the program's domain nests inside, so pidfd_getfd still may reach it
    sys.stdout.flush()
    sys.stderr.flush()
    child = fork_confined(plan, report, plan["bpf_egress"], plan["bpf_egress_self"], path, cmd, env, who="egress supervisor", die_with_parent=True)
    if child is None:
        return 2
    _libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    pid = child.pid
    supervisor.child, supervisor.listener = pid, child.listener
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # the terminal sends them to the program too
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(pid, s))
    child.release()
    status = supervisor.serve()
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    return os.WEXITSTATUS(status)
