# Import shim for the runtime tests: the same test file runs under CPython (pytest) and under
# the MicroPython unix port (tools/mpcheck.py), where the runtime has different package names.
import sys

# CPython sees the installed distribution (`micropv.runtime`); MicroPython sees the staging
# folder tools/mpcheck.py puts on MICROPYPATH, which holds only a `runtime` symlink.
ROOT = "runtime" if sys.implementation.name == "micropython" else "micropv.runtime"


def rt(name=""):
    """Return the runtime submodule `name` ("hal", "abi.xen"), or the package for ""."""
    full = ROOT + "." + name if name else ROOT
    # `__import__` differs between the two: CPython returns the top-level package unless
    # fromlist is non-empty, MicroPython returns the leaf whenever fromlist is given at all.
    # Both register the leaf in sys.modules under its dotted name, so read it from there.
    top = __import__(full)
    mod = sys.modules.get(full)
    if mod is None:
        mod = top
        for part in full.split(".")[1:]:
            mod = getattr(mod, part)
    return mod
