"""The attacker's side of the suite (see conftest.py)."""
