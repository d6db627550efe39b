"""The supervisor answers each call on the thread that received it: a call
that may block (a blocking socket's connect) must hold up only itself.

A listener whose accept queue is full drops every SYN, so a blocking connect
to it waits (minutes: SYN retries). Meanwhile another thread of the program
connects to an allowed peer: that connect must complete while the first
one still waits (held up behind it, it would not complete before the
run's timeout)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .harness import USERS, policy_file
from .test_egress import API, CURL, OTHER, Servers, servers  # noqa: F401 - the fixture


@pytest.mark.parametrize("user", USERS)
def test_a_blocking_connect_holds_up_only_itself(servers: Servers, probes: dict[str, Path], user: str) -> None:  # noqa: F811
    with socket.socket() as full, socket.socket() as fine:
        full.bind((OTHER, 0))
        full.listen(0)
        filler = socket.create_connection(full.getsockname())  # the accept queue is full: later SYNs are dropped
        fine.bind((API, 0))
        fine.listen(8)
        text = (
            'Name = "receivers"\nExtends = ["base"]\n'
            f'[Networking]\nFlags = ["outgoing"]\nProtocols = ["tcp"]\n'
            f'Connect = ["tcp:{OTHER}:{full.getsockname()[1]}", "tcp:{API}:{fine.getsockname()[1]}", "tcp:api.test:{servers.port}"]\n'
            f'[Filesystem]\nReadOnly = ["{servers.root}/**"]\nExec = ["{CURL}", "{servers.root}/egress_probe"]\n'
            '[Runtime]\nFlags = ["exec", "threads"]\n'
        )
        policy = policy_file(servers.root, text, "receivers.toml")
        proc = servers.run(policy, str(servers.root / "egress_probe"), "stuck", OTHER, str(full.getsockname()[1]), API, str(fine.getsockname()[1]), user=user)
        filler.close()
    assert proc.stdout.split()[-1:] == ["ok"], proc.stdout + proc.stderr
