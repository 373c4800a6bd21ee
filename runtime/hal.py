# The HAL seam: everything the runtime needs from the machine it runs on, listed once.
# The host hands the runtime an object with these methods; the runtime never imports the host.
#
# A HAL must provide:
#
#   arch                 "x86_64" or "riscv64"
#   layout               dict of guest-physical addresses the board reserves for the runtime:
#                        "code" (stub area), "code_size", "stack_top", "ist_stack_top",
#                        "tables" (GDT/IDT/TSS page on x86), "hypercall_page", "scratch",
#                        "ram_size", "shared_info_gfn" (where the runtime asks Xen to map it)
#   r8/r16/r32/r64(addr) read guest-physical memory (little-endian)
#   w8/w16/w32/w64(addr, value)
#   read(addr, n) -> bytes, write(addr, data)
#   xchg64(addr, value) -> old           atomic against the hypervisor and other vCPUs
#   test_and_set_bit(addr, bit) -> 0/1  bit is an index into the 64-bit word at addr
#   test_and_clear_bit(addr, bit) -> 0/1
#   load_code(addr, code)                write machine code and make the CPU see it
#   set_return_point(addr)               the instruction (x86 `hlt`) whose execution hands
#                                        control back to Python; run() ends there
#   run(pc, regs, out) -> value          set registers (a tuple of (name, value) pairs), run
#                                        guest code from pc until the return point is reached,
#                                        and give back register `out` (a name) or a tuple of
#                                        values for a tuple of names
#   bridge(addr, fn)                     executing the trap instruction at addr (x86 `hlt`)
#                                        calls fn() in Python, then the CPU continues after it
#   note(what, value)                    an observation for the host's trace (the runtime
#                                        dispatching a port, say); it costs no virtual time,
#                                        is not an interrupt window and changes nothing
#
# Every call is an interrupt window: the host may deliver a pending interrupt before it
# runs, exactly as a CPU may take one between two instructions while interrupts are on.


class MemHAL:
    """A HAL over a bytearray, for the runtime's unit tests (CPython and MicroPython).

    It has no CPU: `run` is given to the constructor as a plain function
    `run(pc, regs, out)`, so a test can script what guest code "does".
    """

    def __init__(self, size=1 << 20, arch="x86_64", run=None, layout=None):
        self.arch = arch
        self.mem = bytearray(size)
        self.layout = layout or {"ram_size": size}
        self._run = run
        self.bridges = {}
        self.return_point = None
        self.code = []

    def _get(self, addr, n):
        v = 0
        m = self.mem
        for i in range(n - 1, -1, -1):
            v = (v << 8) | m[addr + i]
        return v

    def _put(self, addr, n, v):
        m = self.mem
        for i in range(n):
            m[addr + i] = (v >> (8 * i)) & 0xFF

    def r8(self, addr):
        return self.mem[addr]

    def r16(self, addr):
        return self._get(addr, 2)

    def r32(self, addr):
        return self._get(addr, 4)

    def r64(self, addr):
        return self._get(addr, 8)

    def w8(self, addr, v):
        self.mem[addr] = v & 0xFF

    def w16(self, addr, v):
        self._put(addr, 2, v)

    def w32(self, addr, v):
        self._put(addr, 4, v)

    def w64(self, addr, v):
        self._put(addr, 8, v)

    def read(self, addr, n):
        return bytes(self.mem[addr : addr + n])

    def write(self, addr, data):
        # A bytearray slice assignment past the end would grow it under CPython; a RAM
        # does not grow, and MicroPython would refuse, so both refuse here.
        if addr < 0 or addr + len(data) > len(self.mem):
            raise IndexError("write outside MemHAL memory")
        self.mem[addr : addr + len(data)] = data

    def xchg64(self, addr, v):
        old = self._get(addr, 8)
        self._put(addr, 8, v)
        return old

    def test_and_set_bit(self, addr, bit):
        w = self._get(addr, 8)
        self._put(addr, 8, w | (1 << bit))
        return (w >> bit) & 1

    def test_and_clear_bit(self, addr, bit):
        w = self._get(addr, 8)
        self._put(addr, 8, w & ~(1 << bit))
        return (w >> bit) & 1

    def load_code(self, addr, code):
        self.write(addr, code)
        self.code.append((addr, len(code)))

    def set_return_point(self, addr):
        self.return_point = addr

    def run(self, pc, regs=(), out="rax"):
        if self._run is None:
            raise NotImplementedError("MemHAL has no CPU; pass run= to script one")
        return self._run(pc, regs, out)

    def bridge(self, addr, fn):
        self.bridges[addr] = fn

    def note(self, what, value):
        pass
