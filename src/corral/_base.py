"""The root of corral's exceptions, in a module with no imports, so that the
start-up path of `corral run` can raise corral errors cheaply."""


class CorralError(Exception):
    """Root of every error corral raises on purpose."""
