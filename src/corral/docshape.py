"""Typed reading of JSON and TOML documents that come from outside.

Importers read documents corral did not write (Docker's seccomp JSON, bane
TOML). Trusting their shape once let a string-valued ``index`` be pasted
into a generated policy as TOML (a seccomp JSON became ``Writable =
["/**"]``) and a string-valued ``WritablePaths`` be iterated character by
character into ``Writable = ["/"]``. Every value is read through a
``Node`` here, which checks its type and, when it is wrong, raises a
``CorralError`` naming the file and the key path (``syscalls[3].args[0].index``)
with what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._base import CorralError

_TYPE_WORDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table", type(None): "null"}


def _found(value: object) -> str:
    return _TYPE_WORDS.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Node:
    """One value of a document, with where it sits (for the message)."""

    value: object
    source: str
    where: str = ""

    def fail(self, expected: str, found: str = "") -> CorralError:
        at = self.where or "the document"
        return CorralError(f"{at}: expected {expected}, found {found or _found(self.value)}", code="F002", hint="the file must be the format named on the command line, with its keys' types", span=self.source)

    def _child(self, value: object, step: str) -> Node:
        return Node(value, self.source, f"{self.where}.{step}" if self.where and not step.startswith("[") else f"{self.where}{step}")

    def table(self) -> dict[str, object]:
        if not isinstance(self.value, dict):
            raise self.fail("a table (a JSON object)")
        return self.value

    def get(self, key: str, default: object = None) -> Node:
        """The value under ``key`` (``default`` if absent): requires a table."""
        return self._child(self.table().get(key, default), key)

    def keys(self) -> list[str]:
        return [str(k) for k in self.table()]

    def items(self) -> Iterator[Node]:
        """The items of an array (``null`` reads as empty)."""
        if self.value is None:
            return iter(())
        if not isinstance(self.value, list):
            raise self.fail("an array")
        return (self._child(v, f"[{i}]") for i, v in enumerate(self.value))

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail("a string")
        return self.value

    def texts(self) -> list[str]:
        """An array of strings (``null`` reads as empty)."""
        return [n.text() for n in self.items()]

    def integer(self, low: int = 0, high: int = 2**64 - 1) -> int:
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise self.fail("an integer")
        if not low <= self.value <= high:
            raise self.fail(f"an integer from {low} to {high}", str(self.value))
        return self.value

    def flag(self) -> bool:
        if self.value is None:
            return False
        if not isinstance(self.value, bool):
            raise self.fail("true or false")
        return self.value


__all__ = ["Node"]
