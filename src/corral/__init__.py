"""corral: one readable security policy, compiled to every Linux confinement
mechanism that can enforce it.

The names below are imported on first use, so that ``corral run`` (whose
start-up is on every confined command's path) does not pay for them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"
__all__ = ["CorralError", "InternalError", "Policy", "PolicyError", "Sandbox", "SandboxError", "UnenforcedError", "load_policy", "load_policy_text"]

_LAZY = {
    "CorralError": "errors",
    "InternalError": "errors",
    "PolicyError": "errors",
    "UnenforcedError": "errors",
    "Sandbox": "sandbox.api",
    "SandboxError": "sandbox.apply",
    "Policy": "policy",
    "load_policy": "policy",
    "load_policy_text": "policy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'corral' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
