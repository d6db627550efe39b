"""Confined execution: plans, the kernel calls that apply them, and `corral run`."""
