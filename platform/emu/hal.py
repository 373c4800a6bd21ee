# The HAL the runtime is given on a Unicorn machine (the seam is listed in runtime/hal.py).
# Memory calls are served straight from the shared RAM buffer; every call is an interrupt
# window: the vCPU may take a pending interrupt before the call does its work.
import struct

from ..clock import COST_HAL_MEM_NS
from .ram import GuestMemoryError
from .stop import EXIT_VCPU_FAULT, Outcome, Stop

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class UnicornHAL:
    def __init__(self, machine, vcpu, layout):
        self.machine = machine
        self.vcpu = vcpu
        self.arch = vcpu.arch
        self.layout = dict(layout)
        self.ram = machine.ram
        self._buf = machine.ram.buf
        self._clock = machine.clock
        # fn(hal, op, addr, size, rw) at every HAL boundary, before any delivery there (the race
        # explorer): rw is "r", "w" or "rw" for the access about to be made, "" for run (addr
        # is then the pc, size 0).
        self.boundary_hook = None
        self.boundaries = 0

    def _window(self, addr, size, op, rw="r"):
        """Entry to every memory call: account time, maybe deliver, validate the access."""
        m = self.machine
        if m.outcome is not None:
            raise Stop(m.outcome)
        self.boundaries += 1
        clock = self._clock
        clock.now += COST_HAL_MEM_NS  # clock.advance(), inlined: this is the hottest path
        if clock.now >= clock.due:
            clock.settle()
        if self.boundary_hook is not None:
            self.boundary_hook(self, op, addr, size, rw)
        self.vcpu.boundary()
        ram = self.ram
        if addr < 0 or addr + size > ram.size or ram.holes:
            try:
                ram.check(addr, size)
            except GuestMemoryError as e:
                m.finish(Outcome("fault", EXIT_VCPU_FAULT, f"guest Python {op}: {e}"))
                raise Stop(m.outcome) from None

    def r8(self, addr):
        self._window(addr, 1, "r8")
        return self._buf[addr]

    def r16(self, addr):
        self._window(addr, 2, "r16")
        return _U16.unpack_from(self._buf, addr)[0]

    def r32(self, addr):
        self._window(addr, 4, "r32")
        return _U32.unpack_from(self._buf, addr)[0]

    def r64(self, addr):
        self._window(addr, 8, "r64")
        return _U64.unpack_from(self._buf, addr)[0]

    def w8(self, addr, v):
        self._window(addr, 1, "w8", "w")
        self._buf[addr] = v & 0xFF

    def w16(self, addr, v):
        self._window(addr, 2, "w16", "w")
        _U16.pack_into(self._buf, addr, v & 0xFFFF)

    def w32(self, addr, v):
        self._window(addr, 4, "w32", "w")
        _U32.pack_into(self._buf, addr, v & 0xFFFFFFFF)

    def w64(self, addr, v):
        self._window(addr, 8, "w64", "w")
        _U64.pack_into(self._buf, addr, v & 0xFFFFFFFFFFFFFFFF)

    def read(self, addr, n):
        self._window(addr, n, "read")
        return self.ram.read(addr, n)

    def write(self, addr, data):
        self._window(addr, len(data), "write", "w")
        self.ram.write(addr, data)

    # Atomics: one HAL call is one step of the vCPU, so nothing can run in between.
    def xchg64(self, addr, v):
        self._window(addr, 8, "xchg64", "rw")
        old = _U64.unpack_from(self._buf, addr)[0]
        _U64.pack_into(self._buf, addr, v & 0xFFFFFFFFFFFFFFFF)
        return old

    def test_and_set_bit(self, addr, bit):
        self._window(addr, 8, "test_and_set_bit", "rw")
        w = _U64.unpack_from(self._buf, addr)[0]
        _U64.pack_into(self._buf, addr, w | (1 << bit))
        return (w >> bit) & 1

    def test_and_clear_bit(self, addr, bit):
        self._window(addr, 8, "test_and_clear_bit", "rw")
        w = _U64.unpack_from(self._buf, addr)[0]
        _U64.pack_into(self._buf, addr, w & ~(1 << bit))
        return (w >> bit) & 1

    # Code -----------------------------------------------------------------------------------
    def load_code(self, addr, code):
        self._window(addr, len(code), "load_code", "w")
        self.ram.write(addr, code)
        for v in self.machine.vcpus:
            v.sync_code(addr, len(code))

    def set_return_point(self, addr):
        self.vcpu.set_return_point(addr)

    def bridge(self, addr, fn):
        # emu_start stops just after the bridge's trap instruction (x86 hlt: 1 byte, wfi: 4)
        self.vcpu.bridges[addr + self.vcpu.bridge_stop_offset] = fn

    def note(self, what, value):
        trace = self.machine.trace
        if trace.enabled:
            trace.event("note", self.vcpu.id, what=what, value=value)

    def run(self, pc, regs=(), out="rax"):
        m = self.machine
        if m.outcome is not None:
            raise Stop(m.outcome)
        self.boundaries += 1
        if self.boundary_hook is not None:
            self.boundary_hook(self, "run", pc, 0, "")
        vcpu = self.vcpu
        vcpu.boundary()
        for name, value in regs:
            vcpu.set_reg(name, value)
        vcpu.run(pc)
        if isinstance(out, str):
            return vcpu.reg(out)
        return tuple(vcpu.reg(name) for name in out)
