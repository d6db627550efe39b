"""Attacks on domain-scoped egress: "only HTTP/2 to api.test".

Real clients and servers on loopback: two nghttpd servers with their own
certificates, api.test on 127.0.0.2 and other.test on 127.0.0.3. The names
resolve for the supervisor through a test-only hosts file
(``CORRAL_EGRESS_HOSTS``, docs/egress.md) and for curl through --resolve,
so the same test runs as root and as nobody without a mount namespace.
Under a policy allowing only api.test with ALPN h2, curl --http2 works and
every other way out is refused, each with its reason in policy terms.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import USERS, arrivals, as_user, policy_file

API, OTHER = "127.0.0.2", "127.0.0.3"
NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
CURL = shutil.which("curl") or "/usr/bin/curl"


def _free_port() -> int:
    """A port free on both test addresses (bound once, then released)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((API, 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind((OTHER, port))
                    return int(port)
                except OSError:
                    continue
    raise RuntimeError("no free port")


def _wait_listening(ip: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((ip, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {ip}:{port}")


@dataclass
class Servers:
    root: Path
    port: int
    hosts: Path

    def policy(self, extra: str = "", name: str = "egress") -> Path:
        text = (
            f'Name = "{name}"\nExtends = ["base"]\n'
            f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "udp"]\n'
            f'Connect = ["tcp:api.test:{self.port}"]\nALPN = ["h2"]\n{extra}'
            f'[Filesystem]\nFlags = ["tls-certs"]\nReadOnly = ["{self.root}/**"]\nExec = ["{CURL}", "{self.root}/egress_probe"]\n'
            f'[Runtime]\nFlags = ["exec", "threads"]\n'
        )
        return policy_file(self.root, text, f"{name}.toml")

    def run(self, policy: Path, *cmd: str, user: str = "root", run_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = [*as_user(user), sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", *run_args, str(policy), "--", *cmd]
        environment = {**os.environ, "CORRAL_EGRESS_HOSTS": str(self.hosts), **(env or {})}
        return subprocess.run(full, capture_output=True, text=True, env=environment, cwd="/", timeout=60, stdin=subprocess.DEVNULL)

    def curl(self, *args: str, name: str = "api.test", ip: str = API, user: str = "root", policy: Path | None = None, run_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        resolve = ["--resolve", f"{name}:{self.port}:{ip}"] if name else []
        url = f"https://{name or ip}:{self.port}/index.html"
        cmd = [CURL, "-sS", "--max-time", "20", "--cacert", str(self.root / "ca.pem"), "-w", " http=%{http_version}", *resolve, *args, url]
        return self.run(policy or self.policy(), *cmd, user=user, run_args=run_args, env=env)


@pytest.fixture(scope="module")
def servers(probes: dict[str, Path]) -> Iterator[Servers]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="corral-egress-", dir="/tmp"))
    root.chmod(0o755)
    for name in ("api", "other"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / f"{name}.key"), "-out", str(root / f"{name}.crt"),
             "-days", "2", "-subj", f"/CN={name}.test", "-addext", f"subjectAltName=DNS:{name}.test"],
            check=True, capture_output=True,
        )  # fmt: skip
    (root / "ca.pem").write_bytes((root / "api.crt").read_bytes() + (root / "other.crt").read_bytes())
    (root / "index.html").write_text("hello\n")
    hosts = root / "hosts"
    hosts.write_text(f"{API} api.test\n{OTHER} other.test\n")
    shutil.copy(probes["egress_probe"], root / "egress_probe")
    for p in root.iterdir():
        p.chmod(0o755 if p.name == "egress_probe" else 0o644)
    port = _free_port()
    procs = [
        subprocess.Popen([NGHTTPD, f"--address={ip}", "-d", str(root), str(port), str(root / f"{n}.key"), str(root / f"{n}.crt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n, ip in (("api", API), ("other", OTHER))
    ]
    try:
        _wait_listening(API, port)
        _wait_listening(OTHER, port)
        yield Servers(root, port, hosts)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("user", USERS)
def test_http2_to_the_allowed_name_works(servers: Servers, user: str) -> None:
    proc = servers.curl("--http2", user=user)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\n http=2"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("how", "args", "name", "ip", "reason"),
    [
        ("HTTP/1.1 only", ("--http1.1",), "api.test", API, "offers ALPN http/1.1; Networking.ALPN requires h2"),
        ("the other name", ("--http2",), "other.test", OTHER, f"tcp connect to {OTHER}:PORT: not an address of an allowed name; allowed: api.test"),
        ("the other name's SNI at the allowed address", ("--http2",), "other.test", API, "SNI other.test is not an allowed name; allowed: api.test"),
        ("the allowed name's SNI at the other address", ("--http2", "-k"), "api.test", OTHER, f"tcp connect to {OTHER}:PORT: not an address of an allowed name"),
        ("the raw address", ("--http2", "-k"), "", API, "no server name (SNI)"),
        ("plain HTTP", ("--http2",), "", API, "not TLS"),
    ],
)
def test_every_other_way_is_refused_with_its_reason(servers: Servers, user: str, how: str, args: tuple[str, ...], name: str, ip: str, reason: str) -> None:
    if how == "plain HTTP":
        policy = servers.policy()
        proc = servers.run(policy, CURL, "-sS", "--max-time", "20", f"http://{ip}:{servers.port}/index.html", user=user)
    else:
        proc = servers.curl(*args, name=name, ip=ip, user=user)
    assert proc.returncode != 0, proc.stdout
    assert "hello" not in proc.stdout
    assert reason.replace("PORT", str(servers.port)) in proc.stderr, proc.stderr


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        ("mptcp", {"errno=EACCES", "errno=EPERM", "errno=EPROTONOSUPPORT"}),  # refused by socket() or by the supervisor
        ("tfo", {"errno=EPERM"}),
        ("tfo-sendmsg", {"errno=EPERM"}),
        ("udp", {"errno=EPERM"}),
        ("udp-sendmsg", {"errno=EPERM"}),
        ("connect", {"errno=EACCES"}),
    ],
)
def test_other_paths_to_a_peer_are_refused(servers: Servers, user: str, attack: str, expected: set[str]) -> None:
    proc = servers.run(servers.policy(), str(servers.root / "egress_probe"), attack, OTHER, str(servers.port), user=user)
    answer = proc.stdout.split()[-1] if proc.stdout.split() else proc.stderr
    assert answer in expected, proc.stdout + proc.stderr


def test_a_malformed_address_gets_einval_and_the_supervisor_goes_on(servers: Servers) -> None:
    proc = servers.run(servers.policy(), str(servers.root / "egress_probe"), "short", API, str(servers.port))
    assert "short=EINVAL" in proc.stdout and proc.stdout.split()[-1] == "ok", proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_non_blocking_connect_keeps_einprogress(servers: Servers, user: str) -> None:
    proc = servers.run(servers.policy(), str(servers.root / "egress_probe"), "nonblock", API, str(servers.port), user=user)
    assert proc.stdout.split()[-1] == "ok", proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_rewriting_the_address_from_another_thread_never_reaches_the_other_peer(servers: Servers, user: str) -> None:
    """The classic user-notification hole: the supervisor checks the address,
    the program's second thread rewrites it, the kernel connects to the new
    one. Connecting on the program's behalf with the supervisor's own copy
    closes it: the forbidden listener must never see a connection."""
    forbidden = socket.socket()
    forbidden.bind((OTHER, 0))
    forbidden.listen(512)
    forbidden.settimeout(0.2)
    port = forbidden.getsockname()[1]
    policy = servers.policy(name="race").read_text().replace(f"tcp:api.test:{servers.port}", f"tcp:api.test:{port}")
    race = policy_file(servers.root, policy, "race.toml")
    for _ in range(5):  # on a loaded machine the flipping thread may win every one of 300 tries: run the race again
        proc = servers.run(race, str(servers.root / "egress_probe"), "race", API, str(port), OTHER, str(port), "300", user=user)
        assert arrivals(forbidden) == 0, proc.stdout  # never, in any round
        assert proc.stdout.split()[-1] == "ok", proc.stdout + proc.stderr
        if "started=0" not in proc.stdout:
            break
    assert "started=0" not in proc.stdout  # the allowed address was reached: the race really ran


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("attack", ["kill-parent", "ptrace-parent"])
def test_the_supervisor_is_out_of_reach(servers: Servers, user: str, attack: str) -> None:
    policy = servers.policy('[Misc]\nSyscalls = ["kill", "ptrace", "getppid"]\n', name="reach")
    proc = servers.run(policy, str(servers.root / "egress_probe"), attack, "-", "-", user=user)
    assert proc.stdout.split()[-1] == "errno=EPERM", proc.stdout + proc.stderr


@pytest.mark.parametrize("user", USERS)
def test_https_proxy_connect_endpoint_applies_the_same_checks(servers: Servers, user: str) -> None:
    ok = servers.curl("--http2", name="api.test", ip=API, user=user, run_args=("--proxy-env",))
    assert ok.returncode == 0 and ok.stdout == "hello\n http=2", ok.stderr
    # through the proxy, curl resolves nothing itself: the supervisor does
    other = servers.run(servers.policy(), CURL, "-sS", "--max-time", "20", "--cacert", str(servers.root / "ca.pem"), f"https://other.test:{servers.port}/", user=user, run_args=("--proxy-env",))
    assert other.returncode != 0
    assert f"CONNECT other.test:{servers.port}: not an allowed name; allowed: api.test" in other.stderr
    old = servers.run(servers.policy(), CURL, "-sS", "--http1.1", "--max-time", "20", "--cacert", str(servers.root / "ca.pem"), f"https://api.test:{servers.port}/", user=user, run_args=("--proxy-env",))
    assert old.returncode != 0 and "Networking.ALPN requires h2" in old.stderr


def test_a_kernel_without_pidfd_getfd_is_refused_unless_best_effort(servers: Servers) -> None:
    refused = servers.curl("--http2", env={"CORRAL_EGRESS_KERNEL": "0"})
    assert refused.returncode == 2
    assert "need the egress supervisor; this kernel lacks" in refused.stderr and "--best-effort" in refused.stderr
    lossy = servers.curl("--http2", name="other.test", ip=OTHER, env={"CORRAL_EGRESS_KERNEL": "0"}, run_args=("--best-effort",))
    assert "not enforced here: host names, Networking.Deny and ALPN" in lossy.stderr
    assert lossy.stdout == "hello\n http=2"  # what is lost: the port floor alone lets other.test through


GRPC_CLIENT = """
import sys, grpc
creds = grpc.ssl_channel_credentials(open(sys.argv[1], "rb").read())
channel = grpc.secure_channel(sys.argv[2], creds)
echo = channel.unary_unary("/corral.Echo/Echo")
try:
    print(echo(b"ping", timeout=15).decode())
except grpc.RpcError as exc:
    print("rpc error:", exc.code(), exc.details())
    sys.exit(1)
"""


def test_grpc_through_grpc_proxy(servers: Servers) -> None:
    """A real gRPC client (grpcio) reaches the allowed name only through the
    CONNECT endpoint (GRPC_PROXY via --proxy-env; the client resolves
    nothing). As root only: the interpreter lives under /root, which nobody
    cannot enter."""
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler("corral.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"pong:" + req)})
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([((servers.root / "api.key").read_bytes(), (servers.root / "api.crt").read_bytes())])
    port = server.add_secure_port(f"{API}:0", creds)
    server.start()
    client = servers.root / "grpc_client.py"
    client.write_text(GRPC_CLIENT)
    python = os.path.realpath(sys.executable)
    prefix = Path(python).parent.parent
    extra = (
        f'Connect = ["tcp:api.test:{port}"]\nALPN = ["h2"]\n'
        f'[Filesystem]\nFlags = ["tls-certs"]\nReadOnly = ["{servers.root}/**", "{prefix}/**", "{Path(sys.prefix).resolve()}/**", "/usr/**", "/etc/**", "/proc/**", "/sys/**"]\n'
        f'Exec = ["{python}"]\n[Runtime]\nFlags = ["exec", "threads", "stdio"]\n'
    )
    text = f'Name = "grpc"\nExtends = ["base"]\n[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp", "udp", "unix"]\n{extra}[Misc]\nSyscalls = ["getrandom", "eventfd2", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "sched_getaffinity", "prctl", "pipe2", "socketpair", "getsockopt", "setsockopt", "ioctl", "uname", "sysinfo", "timerfd_create", "timerfd_settime"]\n'
    policy = policy_file(servers.root, text, "grpc.toml")
    try:
        ok = servers.run(policy, sys.executable, "-I", str(client), str(servers.root / "ca.pem"), f"api.test:{port}", run_args=("--proxy-env",))
        assert ok.returncode == 0 and ok.stdout.strip() == "pong:ping", ok.stdout + ok.stderr
        other = servers.run(policy, sys.executable, "-I", str(client), str(servers.root / "ca.pem"), f"other.test:{port}", run_args=("--proxy-env",))
        assert other.returncode != 0 and f"CONNECT other.test:{port}: not an allowed name" in other.stderr, other.stdout + other.stderr
    finally:
        server.stop(None)


def test_the_real_resolver_refuses_a_name_that_resolves_to_loopback(servers: Servers) -> None:
    """Without the test-only hosts file: in a private mount namespace whose
    /etc/hosts says api.test is 127.0.0.2, the supervisor resolves the name
    itself (getaddrinfo) and refuses to let it lead to a loopback address —
    what a rebinding DNS answer would do. As root (mount namespaces)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private mount namespace needs root and unshare")
    policy = servers.policy(name="realdns")
    inner = [sys.executable, "-I", "-m", "corral.cli", "run", "--no-cache", str(policy), "--", CURL, "-sS", "--max-time", "20", "-k", "--http2",
             "--resolve", f"api.test:{servers.port}:{API}", f"https://api.test:{servers.port}/index.html"]  # fmt: skip
    script = f'mount --bind {servers.hosts} /etc/hosts && exec "$@"'
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_EGRESS_HOSTS"}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *inner], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "hello" not in proc.stdout
    assert f"tcp connect to {API}:{servers.port}: {API} is a loopback address; a name may not lead there" in proc.stderr, proc.stderr
