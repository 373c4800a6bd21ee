# Running a guest file the way `micropv run` and the pytest plugin both do: load it, merge
# its OPTIONS with the caller's, let its backend(machine, args) set up the host side, run.
import os
from types import SimpleNamespace

from micropv import boards

from .machine import Machine, load_guest_module


def parse_args(pairs):
    """["n=5", "name=x"] -> {"n": 5, "name": "x"} (integers where they parse)."""
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise ValueError(f"--arg takes KEY=VALUE, not {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = int(value, 0)
        except ValueError:
            out[key] = value
    return out


def run_guest(guest, board="pvh-x86_64", options=None, args=None, seed=0,
              budget_ns=None, trace=False, console=None, config=None, setup=None,
              stall_s=None):  # fmt: skip
    """guest: a path, a module-like object with main (and optionally OPTIONS, backend), or
    main itself. config: more rt.config entries; setup(machine): host-side set-up after the
    guest's backend, returning more rt.config entries or None. Returns (machine, result)."""
    if isinstance(guest, (str, bytes)) or hasattr(guest, "__fspath__"):
        module = load_guest_module(os.fsdecode(guest))
    elif callable(guest) and not hasattr(guest, "main"):
        module = SimpleNamespace(main=guest)
    else:
        module = guest
    b = boards.get(board) if isinstance(board, str) else board
    opts = dict(getattr(module, "OPTIONS", {}) or {})
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    if "callback" in opts and opts["callback"] not in b.callbacks:
        raise ValueError(f"board {b.name} has no callback method {opts['callback']!r}; "
                         f"it has {', '.join(b.callbacks)}")  # fmt: skip
    machine = Machine(b, budget_ns=budget_ns, trace=trace, console=console)
    machine.seed = seed
    args = dict(args or {})
    cfg = dict(args)
    cfg["seed"] = seed
    backend = getattr(module, "backend", None)
    if backend is not None:
        cfg.update(backend(machine, args) or {})
    cfg.update(config or {})
    if setup is not None:
        cfg.update(setup(machine) or {})
    return machine, machine.run_python(module.main, opts, cfg, stall_s=stall_s)
