# x86_64 arch layer: the machine code the runtime writes into guest memory at boot, and the
# Python calls that run it. Privileged work (cli/sti, hlt, cpuid, MSRs, rdtsc, vmcall, iretq)
# is always done by real instructions on the emulated CPU, never by the host on our behalf.
from .._compat import const
from .common import StubCalls

GDT_KERNEL_CS = const(0x08)
GDT_KERNEL_DS = const(0x10)
GDT_USER_CS = const(0x1B)  # 0x18 | RPL 3
GDT_USER_DS = const(0x23)  # 0x20 | RPL 3
GDT_TSS = const(0x28)
RFLAGS_IF = const(0x200)
UCALL_PORT = const(0x1000)
UPCALL_VECTOR = const(0x20)  # what Solo5 and Mini-OS use
LAPIC_BASE = const(0xFEE00000)
APIC_SVR = const(0xF0)
APIC_EOI = const(0xB0)
APIC_BASE_ENABLE = const(1 << 11)
MSR_APIC_BASE = const(0x1B)
HVM_PARAM_CALLBACK_IRQ = const(0)
CALLBACK_TYPE_PCI_INTX = const(1)
CALLBACK_TYPE_VECTOR = const(2)

# GDT: null, kernel code (64-bit), kernel data, user code (64-bit), user data, TSS (16 bytes).
_GDT = (0, 0x00209A0000000000, 0x0000920000000000, 0x0020FA0000000000, 0x0000F20000000000)
_TSS_SIZE = const(104)

# Stub bodies; each ends in `ret` and is entered from the trampoline (`call r11`).
_CLI = b"\xfa\xc3"  # cli; ret
_STI = b"\xfb\xc3"  # sti; ret
# sti; hlt; ret -- the hlt sits in sti's one-instruction interrupt shadow, so an interrupt
# that is pending when IF goes to 1 wakes the hlt instead of slipping in before it.
_SAFE_HALT = b"\xfb\xf4\xc3"
_HALT = b"\xf4\xc3"  # hlt; ret
_SAVE_FLAGS_CLI = b"\x9c\x58\xfa\xc3"  # pushfq; pop rax; cli; ret
_READ_FLAGS = b"\x9c\x58\xc3"  # pushfq; pop rax; ret
_RESTORE_FLAGS = b"\x57\x9d\xc3"  # push rdi; popfq; ret
_CPUID = b"\x89\xf8\x89\xf1\x0f\xa2\xc3"  # mov eax,edi; mov ecx,esi; cpuid; ret
_WRMSR = b"\x89\xf9\x89\xf0\x0f\x30\xc3"  # mov ecx,edi; mov eax,esi; wrmsr; ret (edx = high)
# mov ecx,edi; rdmsr; shl rdx,32; or rax,rdx; ret
_RDMSR = b"\x89\xf9\x0f\x32\x48\xc1\xe2\x20\x48\x09\xd0\xc3"
_RDTSC = b"\x0f\x31\x48\xc1\xe2\x20\x48\x09\xd0\xc3"  # rdtsc; shl rdx,32; or rax,rdx; ret
_VMCALL = b"\x0f\x01\xc1\xc3"  # vmcall; ret  (rax = hypercall number)
# mov eax,edi; mov edx,UCALL_PORT; out dx,eax; ret
_UCALL = b"\x89\xf8\xba" + UCALL_PORT.to_bytes(4, "little") + b"\xef\xc3"
_MMIO_READ32 = b"\x8b\x07\xc3"  # mov eax, [rdi]; ret
_MMIO_WRITE32 = b"\x89\x37\xc3"  # mov [rdi], esi; ret
_TRAMPOLINE = b"\x41\xff\xd3"  # call r11, immediately followed by the return point
_RETURN_POINT = b"\xf4"  # hlt: executing it hands control back to Python
# Interrupt entry: save the scratch registers guest Python's own HAL calls may clobber, trap
# to the Python handler (the bridge hlt), restore, iretq -- as an OS's entry code would.
_ENTRY_SAVE = b"\x50\x53\x51\x52\x56\x57\x41\x50\x41\x51\x41\x52\x41\x53"
_ENTRY_RESTORE = b"\x41\x5b\x41\x5a\x41\x59\x41\x58\x5f\x5e\x5a\x59\x5b\x58\x48\xcf"

_ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8")
_HYPERCALL_PAGE_SLOTS = const(128)  # 32-byte stubs in the 4 KiB page


def _u16(v):
    return (v & 0xFFFF).to_bytes(2, "little")


def _u32(v):
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def _u64(v):
    return (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def gate(offset, ist=0, selector=GDT_KERNEL_CS, type_attr=0x8E):
    """A 16-byte IDT gate; 0x8E = present, DPL 0, 64-bit interrupt gate (IF cleared)."""
    lo = (offset & 0xFFFF) | (selector << 16) | (ist << 32) | (type_attr << 40)
    lo |= ((offset >> 16) & 0xFFFF) << 48
    return _u64(lo) + _u64(offset >> 32)


def tss_descriptor(base, limit=_TSS_SIZE - 1):
    lo = (
        (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89 << 40) | (((base >> 24) & 0xFF) << 56)
    )
    return _u64(lo) + _u64(base >> 32)


class Arch(StubCalls):
    """Writes the stubs at boot, then runs them through the HAL."""

    IF_MASK = RFLAGS_IF

    name = "x86_64"

    def __init__(self, hal):
        self.hal = hal
        lay = hal.layout
        self._next = lay["code"]
        self._end = lay["code"] + lay["code_size"]
        self.tables = lay["tables"]
        self.gdt = self.tables
        self.idt = self.tables + 0x1000
        self.tss = self.tables + 0x2000
        self.hypercall_page = None
        self.handlers = {}
        self._write_tables(lay)
        tramp = self._emit(_TRAMPOLINE + _RETURN_POINT)
        self.trampoline = tramp
        self.return_point = tramp + len(_TRAMPOLINE)
        hal.set_return_point(self.return_point)
        self._stubs = {}
        for name, body in (
            ("cli", _CLI), ("sti", _STI), ("safe_halt", _SAFE_HALT), ("halt", _HALT),
            ("save_flags_cli", _SAVE_FLAGS_CLI), ("read_flags", _READ_FLAGS),
            ("restore_flags", _RESTORE_FLAGS), ("cpuid", _CPUID), ("wrmsr", _WRMSR),
            ("rdmsr", _RDMSR), ("rdtsc", _RDTSC), ("vmcall", _VMCALL), ("ucall", _UCALL),
            ("mmio_read32", _MMIO_READ32), ("mmio_write32", _MMIO_WRITE32),
        ):  # fmt: skip
            self._stubs[name] = self._emit(body)
        self._boot(lay)

    # Code area ------------------------------------------------------------------------------
    def _emit(self, code):
        addr = self._next
        end = (addr + len(code) + 15) & ~15
        if end > self._end:
            raise MemoryError("runtime code area full")
        # Pad to 16 bytes with int3, so a stray jump traps and a disassembly reads cleanly.
        self.hal.load_code(addr, code + b"\xcc" * (end - addr - len(code)))
        self._next = end
        return addr

    def _write_tables(self, lay):
        hal = self.hal
        gdt = b"".join(_u64(d) for d in _GDT) + tss_descriptor(self.tss)
        hal.write(self.gdt, gdt)
        tss = bytearray(_TSS_SIZE)
        tss[4:12] = _u64(lay["stack_top"])  # RSP0, for interrupts taken from ring 3
        tss[0x24:0x2C] = _u64(lay["ist_stack_top"])  # IST1
        tss[0x66:0x68] = _u16(_TSS_SIZE)  # no I/O permission bitmap
        hal.write(self.tss, bytes(tss))
        # Pseudo-descriptors for lgdt/lidt: 2-byte limit, 8-byte base.
        hal.write(self.tables + 0x800, _u16(len(gdt) - 1) + _u64(self.gdt))
        hal.write(self.tables + 0x810, _u16(256 * 16 - 1) + _u64(self.idt))

    def _boot(self, lay):
        # mov rsp, top; lgdt; lidt; far return into the 64-bit code segment; load data
        # segments and the TSS; jump to the return point.
        code = bytearray()
        code += b"\x48\xbc" + _u64(lay["stack_top"])
        code += b"\x0f\x01\x14\x25" + _u32(self.tables + 0x800)  # lgdt [abs32]
        code += b"\x0f\x01\x1c\x25" + _u32(self.tables + 0x810)  # lidt [abs32]
        code += b"\x6a" + bytes([GDT_KERNEL_CS])  # push 0x08
        code += b"\x48\x8d\x05" + _u32(3)  # lea rax, [rip+3] -> past push rax; retfq
        code += b"\x50\x48\xcb"  # push rax; retfq
        code += b"\xb8" + _u32(GDT_KERNEL_DS)  # mov eax, 0x10
        code += b"\x8e\xd8\x8e\xc0\x8e\xd0\x8e\xe0\x8e\xe8"  # mov ds/es/ss/fs/gs, eax
        code += b"\xb8" + _u32(GDT_TSS) + b"\x0f\x00\xd8"  # mov eax, 0x28; ltr ax
        start = self._next
        rel = self.return_point - (start + len(code) + 5)
        code += b"\xe9" + _u32(rel)  # jmp return_point
        entry = self._emit(bytes(code))
        self.hal.run(entry, (), "rax")

    # Calling stubs --------------------------------------------------------------------------
    def call(self, addr, args=(), out="rax"):
        regs = [("r11", addr)]
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        return self.hal.run(self.trampoline, regs, out)

    def stub(self, name, args=(), out="rax"):
        return self.call(self._stubs[name], args, out)

    def cpuid(self, leaf, subleaf=0):
        return self.stub("cpuid", (leaf, subleaf), ("rax", "rbx", "rcx", "rdx"))

    def wrmsr(self, msr, value):
        self.stub("wrmsr", (msr, value & 0xFFFFFFFF, value >> 32))

    def rdmsr(self, msr):
        return self.stub("rdmsr", (msr,))

    def rdtsc(self):
        return self.stub("rdtsc")

    def counter(self):
        """The counter pvclock scales: the TSC."""
        return self.stub("rdtsc")

    def mmio_read32(self, addr):
        """A 32-bit load by the CPU itself, so device models (the LAPIC) see the access."""
        return self.stub("mmio_read32", (addr,)) & 0xFFFFFFFF

    def mmio_write32(self, addr, value):
        self.stub("mmio_write32", (addr, value & 0xFFFFFFFF))

    def ucall(self, addr):
        self.stub("ucall", (addr,))

    # Finding Xen ----------------------------------------------------------------------------
    def find_xen(self, rt):
        """CPUID search for Xen's signature, then the hypercall page. Sets rt.cpuid_base and
        rt.hypercall_msr; returns where Xen was found, for people to read."""
        from .. import hypervisor

        base = hypervisor.find_cpuid_base(self)
        if base is None:
            raise RuntimeError("not running on Xen: no XenVMMXenVMM CPUID signature")
        rt.cpuid_base = base
        rt.hypercall_msr = hypervisor.install_hypercall_page(
            self, base, self.hal.layout["hypercall_page"]
        )
        return "CPUID leaf %#x" % base

    # Hypercalls -----------------------------------------------------------------------------
    def hypercall(self, nr, args):
        """Through the hypercall page once installed (call page + nr*32), else a bare vmcall,
        as Linux 6.x does. Returns the raw 64-bit rax. The page has 128 slots; a number past
        them has no stub there, so it goes out by bare vmcall too (Xen answers -ENOSYS)."""
        if self.hypercall_page is not None and 0 <= nr < _HYPERCALL_PAGE_SLOTS:
            return self.call(self.hypercall_page + nr * 32, args)
        regs = [("r11", self._stubs["vmcall"]), ("rax", nr)]
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        return self.hal.run(self.trampoline, regs, "rax")

    # The event-channel upcall ---------------------------------------------------------------
    callbacks = ("vector", "lapic", "gsi", "intx")

    def setup_upcall(self, upcall):
        """Register the upcall for upcall.method. For `lapic` the APIC is enabled first (Linux
        learned that registering before the APIC is up warns), and Xen asserts the vector at
        once: expect one spurious upcall."""
        method = upcall.method
        if method == "vector":
            self.set_vector(UPCALL_VECTOR, upcall.entry)
            upcall.set_param(HVM_PARAM_CALLBACK_IRQ, (CALLBACK_TYPE_VECTOR << 56) | UPCALL_VECTOR)
        elif method == "lapic":
            base = self.rdmsr(MSR_APIC_BASE)
            if not base & APIC_BASE_ENABLE:
                self.wrmsr(MSR_APIC_BASE, base | APIC_BASE_ENABLE)
            svr = self.mmio_read32(LAPIC_BASE + APIC_SVR)
            self.mmio_write32(LAPIC_BASE + APIC_SVR, svr | 0x100 | 0xFF)
            # The entry code writes EOI first, as Linux does for the per-vCPU vector: the
            # LAPIC latches a new edge in IRR meanwhile, so nothing raised during the demux
            # is lost.
            self.set_vector(UPCALL_VECTOR, upcall.entry, eoi=LAPIC_BASE + APIC_EOI)
            upcall.set_upcall_vector(upcall.rt.vcpu_id, UPCALL_VECTOR)
            # "Trick toolstack to think we are enlightened" (Xen's own guest code): a non-zero
            # CALLBACK_IRQ; GSI 1 does nothing on PVH, the per-vCPU vector wins.
            upcall.set_param(HVM_PARAM_CALLBACK_IRQ, 1)
        elif method == "gsi":
            upcall.set_param(HVM_PARAM_CALLBACK_IRQ, 5)  # GSI 5: stored, never raised on PVH
        else:  # intx: bus 0, device 3, INTB
            upcall.set_param(HVM_PARAM_CALLBACK_IRQ,
                             (CALLBACK_TYPE_PCI_INTX << 56) | (3 << 11) | 1)  # fmt: skip
        upcall.eoi_in_entry = method == "lapic"

    # Interrupt vectors ----------------------------------------------------------------------
    def set_vector(self, vector, fn, ist=0, eoi=None):
        """Route vector to fn(vector), run with interrupts off on the interrupted stack (or
        IST stack ist), then iretq. The host delivers through this very IDT entry. With eoi
        (a LAPIC EOI register address) the entry code writes EOI before calling fn, as
        Linux's per-vCPU upcall handler does first thing."""
        if not 0 <= vector < 256:
            raise ValueError("vector out of range")
        old = self.handlers.get(vector)
        if old is None or old[2] != eoi:
            prologue = _ENTRY_SAVE
            if eoi is not None:
                # mov rax, eoi; mov dword [rax], 0  (rax is already saved)
                prologue += b"\x48\xb8" + _u64(eoi) + b"\xc7\x00\x00\x00\x00\x00"
            entry = self._emit(prologue + b"\xf4" + _ENTRY_RESTORE)
            self.hal.bridge(entry + len(prologue), lambda: self.handlers[vector][1](vector))
        else:
            entry = old[0]
        self.handlers[vector] = (entry, fn, eoi)
        self.hal.write(self.idt + vector * 16, gate(entry, ist))
        return entry
