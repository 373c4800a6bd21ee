# The only CPython/MicroPython switch in the runtime.
# MicroPython has `const` built in (and `from micropython import const`); CPython has neither.
try:
    from micropython import const  # noqa: F401
except ImportError:

    def const(x):
        return x


def caller(depth=1):
    """(file, line) of the caller `depth` frames up; ("?", 0) where the port cannot tell
    (MicroPython has no sys._getframe)."""
    try:
        import sys

        f = sys._getframe(depth + 1)
        return f.f_code.co_filename, f.f_lineno
    except (AttributeError, ValueError):
        return "?", 0
