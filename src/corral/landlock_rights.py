"""Landlock's access rights: each right's bit and the ABI that introduced it,
from linux/landlock.h. One table for the backend that writes rulesets and
the code that applies them; it imports nothing, so `corral run` pays nothing."""

FS_BITS = {
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1),
    "read_dir": (1 << 3, 1), "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1),
    "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1), "make_reg": (1 << 8, 1),
    "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3),
    "ioctl_dev": (1 << 15, 5), "resolve_unix": (1 << 16, 9),
}  # fmt: skip
NET_BITS = {"bind_tcp": (1 << 0, 4), "connect_tcp": (1 << 1, 4)}
SCOPE_BITS = {"abstract_unix_socket": (1 << 0, 6), "signal": (1 << 1, 6)}
#: Rights a rule on a file (not a directory) may carry.
FILE_RIGHTS = ("execute", "write_file", "read_file", "truncate", "ioctl_dev", "resolve_unix")
