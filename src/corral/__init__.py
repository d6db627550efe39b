"""corral: one readable security policy, compiled to every Linux confinement
mechanism that can enforce it."""

from .errors import CorralError, InternalError, PolicyError, UnenforcedError
from .policy import Policy, load_policy, load_policy_text

__version__ = "0.1.0"
__all__ = ["CorralError", "InternalError", "Policy", "PolicyError", "UnenforcedError", "load_policy", "load_policy_text"]
