"""Learning policies from what programs do: strace and audit-log readers, synthesis."""
