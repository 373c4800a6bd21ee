# x86 paging, read from the host side: a native guest's linear addresses (its IDT, TSS and
# stacks, the instruction at RIP) translated through its own page tables, and the #PF error
# code Unicorn 2.1.4 does not report (it hands the host the vector and leaves CR2 set, but
# the error code stays inside QEMU). Ref: SDM vol. 3 §4.5 (4-level and PAE paging), §4.3
# (32-bit paging), §4.7 (page-fault error code); QEMU target/i386 mmu_translate.
CR0_PG = 1 << 31
CR0_WP = 1 << 16
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
CR4_SMEP = 1 << 20
CR4_SMAP = 1 << 21
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11

PTE_P = 1 << 0
PTE_RW = 1 << 1
PTE_US = 1 << 2
PTE_PS = 1 << 7
PTE_NX = 1 << 63
ADDR_MASK = 0x000FFFFFFFFFF000

# Page-fault error code bits (SDM vol. 3 §4.7)
PF_P = 1 << 0  # 1: protection violation on a present page; 0: not present
PF_W = 1 << 1  # the access was a write
PF_U = 1 << 2  # the access came from CPL 3
PF_RSVD = 1 << 3
PF_I = 1 << 4  # instruction fetch (reported only with NX or SMEP on, as QEMU and CPUs do)


class Paging:
    """A snapshot of the registers that control translation: (cr0, cr3, cr4, efer)."""

    __slots__ = ("cr0", "cr3", "cr4", "efer")

    def __init__(self, cr0, cr3, cr4, efer):
        self.cr0, self.cr3, self.cr4, self.efer = cr0, cr3, cr4, efer

    @property
    def enabled(self):
        return bool(self.cr0 & CR0_PG)

    @property
    def long_mode(self):
        return bool(self.efer & EFER_LMA)


def walk(ram, paging, va):
    """Translate linear address va. Returns (pa, writable, user, executable), or None when
    some level is not present (or its table is outside RAM). Access rights accumulate over
    the levels as the CPU combines them: writable and user only if every level says so,
    executable unless some level sets XD (with EFER.NXE)."""
    if not paging.enabled:
        return va, True, True, True
    nxe = bool(paging.efer & EFER_NXE)
    if paging.long_mode or paging.cr4 & CR4_PAE:
        if paging.long_mode:
            table, shifts = paging.cr3 & ADDR_MASK, (39, 30, 21, 12)
        else:  # PAE: four PDPTEs at CR3 (32-byte aligned); they carry no access rights
            pdpte = _entry(ram, (paging.cr3 & 0xFFFFFFE0) + 8 * ((va >> 30) & 3), 8)
            if pdpte is None or not pdpte & PTE_P:
                return None
            table, shifts = pdpte & ADDR_MASK, (21, 12)
        rw = us = True
        nx = False
        for level, shift in enumerate(shifts):
            e = _entry(ram, table + 8 * ((va >> shift) & 0x1FF), 8)
            if e is None or not e & PTE_P:
                return None
            rw &= bool(e & PTE_RW)
            us &= bool(e & PTE_US)
            nx |= nxe and bool(e & PTE_NX)
            last = shift == 12 or (e & PTE_PS and shift in (30, 21))
            if last:
                size_mask = (1 << shift) - 1
                pa = (e & ADDR_MASK & ~size_mask) | (va & size_mask)
                return pa, rw, us, not nx
            table = e & ADDR_MASK
        return None
    # 32-bit paging: 4-byte entries, 4 MiB pages with CR4.PSE
    pde = _entry(ram, (paging.cr3 & 0xFFFFF000) + 4 * ((va >> 22) & 0x3FF), 4)
    if pde is None or not pde & PTE_P:
        return None
    if pde & PTE_PS and paging.cr4 & CR4_PSE:
        pa = (pde & 0xFFC00000) | ((pde >> 13) & 0xFF) << 32 | (va & 0x3FFFFF)
        return pa, bool(pde & PTE_RW), bool(pde & PTE_US), True
    pte = _entry(ram, (pde & 0xFFFFF000) + 4 * ((va >> 12) & 0x3FF), 4)
    if pte is None or not pte & PTE_P:
        return None
    return ((pte & 0xFFFFF000) | (va & 0xFFF), bool(pde & pte & PTE_RW),
            bool(pde & pte & PTE_US), True)  # fmt: skip


def _entry(ram, addr, size):
    if not ram.valid(addr, size):
        return None
    return ram.u64(addr) if size == 8 else ram.u32(addr)


def allowed(paging, rights, write=False, fetch=False, user=False):
    """Whether an access with these rights is permitted (SDM vol. 3 §4.6)."""
    _, rw, us, exe = rights
    if user and not us:
        return False
    if fetch:
        if not exe:
            return False
        return not (not user and us and paging.cr4 & CR4_SMEP)
    if write and not rw and (user or paging.cr0 & CR0_WP):
        return False
    return True


def page_fault_code(paging, rights, write, fetch, user):
    """The error code the CPU would push for a fault on an access of this kind to a page
    whose walk gave `rights` (None: not present). QEMU's convention for I/D: set only for a
    fetch with NX (PAE or long mode) or SMEP enabled."""
    code = 0
    if rights is not None:
        code |= PF_P
    if write:
        code |= PF_W
    if user:
        code |= PF_U
    nx_on = paging.efer & EFER_NXE and paging.cr4 & CR4_PAE
    if fetch and (nx_on or paging.cr4 & CR4_SMEP):
        code |= PF_I
    return code


class LinearView:
    """A RAM-like view of the guest's linear address space (read only), for disassembly:
    read(addr, n) and size, as report.disassemble expects. Unmapped bytes read as 0."""

    def __init__(self, ram, paging):
        self.ram = ram
        self.paging = paging
        self.size = 1 << 64 if paging.long_mode else 1 << 32

    def read(self, addr, n):
        out = bytearray()
        while n > 0:
            chunk = min(n, 0x1000 - (addr & 0xFFF))
            t = walk(self.ram, self.paging, addr)
            if t is None or not self.ram.valid(t[0], chunk):
                out += bytes(chunk)
            else:
                out += self.ram.read(t[0], chunk)
            addr += chunk
            n -= chunk
        return bytes(out)

    def mapped(self, addr):
        t = walk(self.ram, self.paging, addr)
        return t is not None and self.ram.valid(t[0], 1)
