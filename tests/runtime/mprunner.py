# Runs one runtime test module without pytest, for the MicroPython gate (tools/mpcheck.py).
# Usage: micropython mprunner.py test_hal   (also works under CPython with micropv installed)
# Calls every top-level callable named test_* with no arguments, prints each failure, and ends
# with one machine-readable line: MPRUN passed=N failed=M
import sys


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)


def run(modname):
    if modname.endswith(".py"):
        modname = modname[:-3]
    modname = modname.split("/")[-1]
    try:
        __import__(modname)
        mod = sys.modules[modname]
    except Exception as e:  # an import failure counts as one failed test
        print("FAIL", modname, "(import)")
        _print_exc(e)
        return 0, 1
    passed = failed = 0
    for name in sorted(dir(mod)):
        if not name.startswith("test_"):
            continue
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        try:
            fn()
        except Exception as e:
            failed += 1
            print("FAIL", modname + "." + name)
            _print_exc(e)
        else:
            passed += 1
            print("ok  ", modname + "." + name)
    return passed, failed


def main(argv):
    if len(argv) != 2:
        print("usage: mprunner.py TEST_MODULE")
        return 2
    passed, failed = run(argv[1])
    print("MPRUN passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
