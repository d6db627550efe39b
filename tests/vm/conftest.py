"""The VM tier: tests that boot Debian's kernel (AppArmor on, Landlock ABI 2)
under QEMU/TCG. See vm.py; `bash dev.sh setup` installs qemu and fetches the
kernel. A missing VM is a failure, not a skip: CI must run this tier.

Set CORRAL_VM_NO_APPARMOR=1 to boot every guest with apparmor=0: the tier's
AppArmor checks must then fail, which is how it proves it tests the kernel.
"""

from __future__ import annotations

import pytest

from . import vm as vmmod


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/vm/" in str(item.fspath):
            item.add_marker(pytest.mark.vm)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots a QEMU guest with Debian's AppArmor kernel (tests/vm/)")


@pytest.fixture(scope="session")
def vm_ready() -> None:
    why = vmmod.available()
    if why:
        pytest.fail(f"the VM tier cannot run: {why}; `bash dev.sh setup` installs qemu and fetches the kernel")
