"""The policy language: loading, validation, the flag catalogue."""

from .loader import load_policy, load_policy_text
from .model import Policy

__all__ = ["Policy", "load_policy", "load_policy_text"]
