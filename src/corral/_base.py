"""The root of corral's exceptions, in a module with no imports, so that the
start-up path of `corral run` can raise and render corral errors cheaply.

Every error has the same anatomy: a code (documented in docs/errors.md), a
message saying what is wrong, a hint saying what to do, and where it
happened when that is known (a span, or a path). Library code raises;
only the command line renders (``render``), so no library message starts
with ``corral VERB: error:``.
"""


class CorralError(Exception):
    """Root of every error corral raises on purpose."""

    #: A subclass's default code; an instance may carry a more precise one.
    code = ""

    def __init__(self, message: str = "", *, code: str = "", hint: str = "", span: object = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.hint = hint
        #: Where: an ``errors.Span``, a path, or None (then the verb is named).
        self.span = span

    def render(self, verb: str = "", severity: str = "error") -> str:
        """``WHERE: error[CODE]: message`` and ``  = hint: ...``."""
        from .escape import printable  # a value in a message must not drive the terminal

        where = printable(str(self.span)) if self.span else ("corral " + verb if verb else "corral")
        tag = f"{severity}[{self.code}]" if self.code else severity
        message = "\n".join(printable(line) for line in self.message.split("\n"))  # some messages are tables
        lines = [f"{where}: {tag}: {message}"]
        if self.hint:
            lines.append(f"  = hint: {printable(self.hint)}")
        return "\n".join(lines)
