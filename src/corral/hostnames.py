"""Host-name matching for Connect and Deny rules, shared by lowering and
by corral run's egress supervisor (which must not import the policy
loader on its start-up path)."""

from __future__ import annotations


def host_matches(pattern: str, host: str) -> bool:
    """Whether a Connect/Deny host covers ``host``: equal, or for
    ``*.example.com`` any name one or more labels below example.com (never
    example.com itself). Names compare case-insensitively, without a final dot."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


__all__ = ["host_matches"]
