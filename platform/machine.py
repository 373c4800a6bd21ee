# A machine: one board instance -- guest RAM, vCPUs, the Xen stub, a virtual clock and a trace.
# run_python() boots the runtime on vCPU 0 and runs a guest's main(rt) to the end of the run.
import os
import sys
import traceback
from dataclasses import dataclass, field

from micropv.runtime import boot
from micropv.runtime import ucall as U
from micropv.runtime.abi import sched as S

from .clock import VirtualClock
from .emu.hal import UnicornHAL
from .emu.riscv64 import RiscvVCPU
from .emu.stop import EXIT_BUDGET, EXIT_GUEST_ERROR, HostBug, Outcome, Stop
from .emu.x86_64 import X86VCPU
from .trace import Trace
from .xen.hypervisor import SHUTDOWN_NAMES, Xen

DEFAULT_WALLCLOCK_EPOCH_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
_VCPU_CLASSES = {"x86_64": X86VCPU, "riscv64": RiscvVCPU}
_HOST_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Message:
    """One guest -> test message (ucall)."""

    kind: str
    file: str
    line: int
    a: int
    b: int
    text: str
    time_ns: int


@dataclass
class Result:
    status: int
    outcome: Outcome
    console: str
    messages: list = field(default_factory=list)
    virtual_ns: int = 0
    trace: Trace | None = None

    @property
    def ok(self):
        return self.status == 0


class Machine:
    def __init__(self, board, budget_ns=None, trace=False, console=None,
                 wallclock_epoch_ns=DEFAULT_WALLCLOCK_EPOCH_NS, native=False):  # fmt: skip
        """native: vCPUs for an ELF kernel (platform/native.py), not for Python guests."""
        if board.arch not in _VCPU_CLASSES:
            raise ValueError(f"board {board.name}: no vCPU model for arch {board.arch}")
        self.board = board
        self.domid = 1
        self.clock = VirtualClock(budget_ns)
        self.trace = Trace(self.clock, enabled=trace)
        from .emu.ram import GuestRAM

        self.ram = GuestRAM(board.ram_size)
        self.e820 = list(board.memory_map)
        self.wallclock_epoch_ns = wallclock_epoch_ns
        self.outcome = None
        self.messages = []
        self.on_sync = None  # fn(machine, message): host-side work at a guest sync point
        self._console_sink = console  # a callable taking str, e.g. live stdout
        self._console = bytearray()
        self._console_sent = 0
        self._exit_status = None
        self.native = native
        if native:
            from .emu.x86_native import NativeX86VCPU

            vcpu_class = NativeX86VCPU
        else:
            vcpu_class = _VCPU_CLASSES[board.arch]
        self.vcpus = [vcpu_class(self, i) for i in range(board.vcpus)]
        self.hypervisor = Xen(self, board)

    # Memory frames ---------------------------------------------------------------------------
    def set_hole(self, gfn, hole):
        """Make frame gfn unpopulated (guest accesses fault) or give it back to RAM."""
        from unicorn import UC_PROT_ALL

        addr = gfn << 12
        if hole and gfn not in self.ram.holes:
            self.ram.holes.add(gfn)
            for v in self.vcpus:
                v.uc.mem_unmap(addr, 4096)
        elif not hole and gfn in self.ram.holes:
            self.ram.holes.discard(gfn)
            self.ram.write(addr, bytes(4096))
            for v in self.vcpus:
                v.uc.mem_map_ptr(addr, 4096, UC_PROT_ALL, self.ram.ptr + addr)

    # Console ---------------------------------------------------------------------------------
    def console_write(self, data):
        self._console += data
        if self._console_sink is not None and b"\n" in data:
            self.console_flush()

    def console_flush(self):
        if self._console_sink is not None and self._console_sent < len(self._console):
            text = bytes(self._console[self._console_sent :]).decode(errors="replace")
            self._console_sent = len(self._console)
            self._console_sink(text)

    def console_text(self):
        return bytes(self._console).decode(errors="replace")

    # Guest messages, shutdown, the end of the run ---------------------------------------------
    def ucall(self, vcpu, addr):
        ram = self.ram
        if not ram.valid(addr, U.UCALL_HEADER):
            return
        cmd, line = ram.u32(addr), ram.u32(addr + 4)
        a, b = ram.u64(addr + 8), ram.u64(addr + 16)
        flen, mlen = ram.u16(addr + 24), ram.u16(addr + 26)
        if not ram.valid(addr, U.UCALL_HEADER + flen + mlen):
            return
        file = ram.read(addr + U.UCALL_HEADER, flen).decode(errors="replace")
        text = ram.read(addr + U.UCALL_HEADER + flen, mlen).decode(errors="replace")
        kind = {U.UCALL_SYNC: "sync", U.UCALL_ABORT: "abort", U.UCALL_DONE: "done",
                U.UCALL_EXIT: "exit"}.get(cmd, f"ucall{cmd}")  # fmt: skip
        msg = Message(kind, file, line, a, b, text, self.clock.now)
        self.messages.append(msg)
        self.trace.event("ucall", vcpu.id, kind=kind, line=line, a=a)
        if kind == "exit":
            self._exit_status = a if a < 256 else 255
        elif kind == "sync" and self.on_sync is not None:
            self.on_sync(self, msg)
        elif kind == "abort":
            where = f"{os.path.basename(file)}:{line}"
            self.finish(Outcome("check", EXIT_GUEST_ERROR, f"guest check failed at {where}: "
                                f"{text}", details={"file": file, "line": line}))  # fmt: skip

    def shutdown(self, reason, code=None):
        name = SHUTDOWN_NAMES.get(reason, str(reason))
        if self._exit_status is not None:
            status = self._exit_status
        else:
            status = 1 if reason in (S.SHUTDOWN_crash, S.SHUTDOWN_watchdog) else 0
        self.finish(Outcome("shutdown", status, f"domain shut down ({name})", reason=reason))

    def finish(self, outcome):
        if self.outcome is None:
            self.outcome = outcome
            self.trace.event("end", 0, kind=outcome.kind, status=outcome.status)
        self.console_flush()

    # Running a Python guest ------------------------------------------------------------------
    def hal(self, vcpu_id=0):
        return UnicornHAL(self, self.vcpus[vcpu_id], self.board.runtime_layout)

    @property
    def backend(self):
        """Domain 0 as the host drives it: bind channels with the guest, send, observe."""
        return self.hypervisor.backend

    def run_python(self, main, options=None, config=None, stall_s=None):
        """Boot the runtime and run main(rt) until the domain shuts down or the run ends.
        options choose guest policies (callback, unmask, handlers, clear); config is what
        the guest finds in rt.config. stall_s: end the run if the guest makes no machine
        call for that many wall seconds (a pure-Python loop the virtual budget cannot see)."""
        hal = self.hal()
        if stall_s:
            from .watchdog import Watchdog

            with Watchdog(self.vcpus, lambda: hal.boundaries, stall_s, True) as dog:
                try:
                    self._run_python(hal, main, options, config)
                except KeyboardInterrupt as exc:
                    if not dog.fired:
                        raise
                    self.finish(Outcome("stall", EXIT_BUDGET,
                                        f"guest made no machine call for {stall_s} s of wall "
                                        "time (a Python loop that never touches the machine?)",
                                        guest_traceback(exc, where_only=True)))  # fmt: skip
        else:
            self._run_python(hal, main, options, config)
        return Result(self.outcome.status, self.outcome, self.console_text(), self.messages,
                      self.clock.now, self.trace)  # fmt: skip

    def _run_python(self, hal, main, options, config):
        try:
            boot.run(hal, main, options, config)
        except Stop as stop:
            # Most stops record their outcome before raising; the clock's BudgetExceeded
            # cannot (it has no machine), so record it here. finish() keeps the first outcome.
            self.finish(stop.outcome)
            if self.outcome.kind == "budget" and not self.outcome.report:
                self.outcome.report = self.vcpus[0].report()
            if stop.outcome.kind != "shutdown":
                # Where the guest's Python was when the machine stopped under it.
                tb = guest_traceback(stop, where_only=True)
                self.outcome.report = "\n".join(filter(None, [self.outcome.report, tb]))
        except HostBug:
            raise
        except Exception as exc:  # the guest's own Python failed
            self.finish(Outcome("guest-error", EXIT_GUEST_ERROR,
                                f"guest raised {type(exc).__name__}: {exc}",
                                guest_traceback(exc)))  # fmt: skip
        if self.outcome is None:
            self.finish(Outcome("guest-error", EXIT_GUEST_ERROR, "guest returned without "
                                "shutting down"))  # fmt: skip


def guest_traceback(exc, where_only=False):
    """The traceback of a guest exception, without the host's own frames. With where_only,
    just the frames (for a machine stop, whose exception is the host's, not the guest's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_HOST_DIR)]  # fmt: skip
    if not frames:
        return ""
    lines = ["guest Python traceback (most recent call last):"]
    lines += [ln.rstrip("\n") for ln in traceback.format_list(frames)]
    if not where_only:
        lines += [ln.rstrip("\n") for ln in traceback.format_exception_only(type(exc), exc)]
    return "\n".join(lines)


def load_guest_module(path):
    """Import a guest file; it defines main(rt), and optionally OPTIONS (policy defaults) and
    backend(machine, args) (host-side set-up, returning the guest's rt.config)."""
    import importlib.util

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such guest file: {path}")
    name = "micropv_guest_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise ValueError(f"{path}: a guest defines main(rt)")
    return module


def load_guest(path):
    """Import a guest file and return its main(rt)."""
    return load_guest_module(path).main
