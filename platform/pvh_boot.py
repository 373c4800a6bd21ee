# The PVH start of day for a native kernel (Xen docs/misc/pvh.pandoc): the pages the host
# reserves at the top of guest RAM, the hvm_start_info the kernel finds in EBX, and the entry
# trampoline that puts the vCPU in the state the PVH contract requires.
#
# Unicorn's UC_MODE_64 CPU starts in a state no real CPU has: EFER.LME|LMA set with paging
# off. The PVH entry wants 32-bit protected mode with paging off, EFER.LME clear. Leaving long
# mode architecturally needs a CR0.PG 1->0 change made from compatibility mode, so the
# trampoline (run by the emulated CPU, measured in docs/native-guests.md):
#   64-bit:  lgdt/lidt (our GDT: flat 32-bit code 0x08, data 0x10, 32-bit TSS 0x18 at base 0;
#            an empty IDT), CR4.PAE, CR3 = an identity map of the first GiB, CR0.PG=1 -- now
#            real long mode -- then a far jump through memory to selector 0x08: compat mode;
#   32-bit:  CR0.PG=0 (long mode off: LMA=0), EFER=0, CR4=0, CR3=0, CR0=PE, DS/ES/SS/FS/GS =
#            0x10, ltr 0x18, EBX = hvm_start_info, the other GPRs 0, jmp to PHYS32_ENTRY.
# Nothing of it is left in a register the guest can see except GDTR/IDTR, which the PVH
# contract leaves undefined (the guest loads its own).
import struct

from micropv.runtime.abi import start_info as SI

PAGE = 0x1000
GDT_CODE32 = 0x08
GDT_DATA32 = 0x10
GDT_TSS32 = 0x18
_GDT = (
    0,
    0x00CF9A000000FFFF,  # flat 32-bit code: base 0, limit 4 GiB, D=1, G=1
    0x00CF92000000FFFF,  # flat 32-bit data
    0x0000890000000067,  # 32-bit TSS, available: base 0, limit 0x67 (what the contract says)
)
CMDLINE_MAX = PAGE - 1  # one page, NUL-terminated (Xen's own limit is 1024 bytes)


class Layout:
    """The host's pages at the top of guest RAM, marked reserved in the memory map:
    console ring, xenstore ring, hvm_start_info (+ memory map), command line, the entry
    trampoline (+ its GDT) and the trampoline's three page-table pages."""

    PAGES = 8

    def __init__(self, ram_size):
        top = ram_size
        self.console = top - 1 * PAGE
        self.store = top - 2 * PAGE
        self.start_info = top - 3 * PAGE
        self.cmdline = top - 4 * PAGE
        self.trampoline = top - 5 * PAGE
        self.page_tables = top - 8 * PAGE  # PML4, PDPT, PD
        self.reserved_start = top - self.PAGES * PAGE
        self.reserved_end = top


def reserve(e820, start, end, kind=2):
    """The e820 list with [start, end) cut out of every RAM entry and added as `kind`."""
    out = []
    for addr, size, typ in e820:
        hi = addr + size
        if typ != 1 or hi <= start or addr >= end:
            out.append((addr, size, typ))
            continue
        if addr < start:
            out.append((addr, start - addr, typ))
        if hi > end:
            out.append((end, hi - end, typ))
    out.append((start, end - start, kind))
    return sorted(out)


def write_start_info(ram, layout, cmdline, e820):
    """hvm_start_info version 1 with the command line and the memory map (24-byte entries
    right after the 56-byte structure). Returns its address, EBX at entry."""
    raw = cmdline.encode()
    if len(raw) > CMDLINE_MAX or b"\0" in raw:
        raise ValueError(f"the command line must be at most {CMDLINE_MAX} bytes, no NUL")
    ram.write(layout.cmdline, raw + b"\0")
    base = layout.start_info
    memmap = base + SI.START_INFO_SIZE + 8  # 8-byte aligned after the structure
    info = bytearray(SI.START_INFO_SIZE)
    struct.pack_into("<IIII", info, 0, SI.XEN_HVM_START_MAGIC_VALUE, SI.HVM_START_INFO_VERSION,
                     0, 0)  # fmt: skip
    struct.pack_into("<Q", info, SI.START_INFO_modlist_paddr, 0)
    struct.pack_into("<Q", info, SI.START_INFO_cmdline_paddr, layout.cmdline)
    struct.pack_into("<Q", info, SI.START_INFO_rsdp_paddr, 0)  # no ACPI tables
    struct.pack_into("<Q", info, SI.START_INFO_memmap_paddr, memmap)
    struct.pack_into("<I", info, SI.START_INFO_memmap_entries, len(e820))
    entries = b"".join(struct.pack("<QQII", a, s, t, 0) for a, s, t in e820)
    if SI.START_INFO_SIZE + 8 + len(entries) > PAGE:
        raise ValueError("memory map too long for the start_info page")
    ram.write(base, bytes(info))
    ram.write(memmap, entries)
    return base


def trampoline(layout, entry, start_info):
    """Machine code and data of the entry trampoline, for address layout.trampoline."""
    t = layout.trampoline
    data = t + 0x100
    gdt, gdtr, idtr, farptr, target = data, data + 0x20, data + 0x30, data + 0x40, data + 0x48
    compat = t + 0x31

    def u32(v):
        return struct.pack("<I", v)

    code = b"".join((
        # 64-bit (Unicorn's initial state)
        b"\x0f\x01\x14\x25" + u32(gdtr),  # lgdt [gdtr]
        b"\x0f\x01\x1c\x25" + u32(idtr),  # lidt [idtr]: limit 0, no IDT yet
        b"\xb8\x20\x00\x00\x00\x0f\x22\xe0",  # mov eax, CR4.PAE; mov cr4, rax
        b"\xb8" + u32(layout.page_tables) + b"\x0f\x22\xd8",  # mov eax, pml4; mov cr3, rax
        b"\x0f\x20\xc0\x0f\xba\xe8\x1f\x0f\x22\xc0",  # mov rax, cr0; bts eax, 31; mov cr0, rax
        b"\xff\x2c\x25" + u32(farptr),  # jmp far [farptr] -> 0x08:compat
        # 32-bit compatibility mode, then legacy protected mode
        b"\x0f\x20\xc0\x0f\xba\xf0\x1f\x0f\x22\xc0",  # mov eax, cr0; btr eax, 31; mov cr0, eax
        b"\xb9\x80\x00\x00\xc0\x31\xc0\x31\xd2\x0f\x30",  # EFER = 0 (ecx, eax, edx; wrmsr)
        b"\x0f\x22\xe0\x0f\x22\xd8",  # mov cr4, eax; mov cr3, eax
        b"\xb8\x01\x00\x00\x00\x0f\x22\xc0",  # mov eax, 1; mov cr0, eax (PE)
        b"\xb8" + u32(GDT_DATA32) + b"\x8e\xd8\x8e\xc0\x8e\xd0\x8e\xe0\x8e\xe8",  # ds..gs
        b"\xb8" + u32(GDT_TSS32) + b"\x0f\x00\xd8",  # mov eax, 0x18; ltr ax
        b"\xbb" + u32(start_info),  # mov ebx, start_info
        b"\x31\xc0\x31\xc9\x31\xd2\x31\xf6\x31\xff\x31\xed\x31\xe4",  # eax..esp = 0
        b"\xff\x25" + u32(target),  # jmp [target]
    ))  # fmt: skip
    assert code.index(b"\x0f\x20\xc0\x0f\xba\xf0") == compat - t and len(code) <= 0x100
    page = bytearray(PAGE)
    page[: len(code)] = code
    d = data - t
    page[d : d + 8 * len(_GDT)] = struct.pack(f"<{len(_GDT)}Q", *_GDT)
    struct.pack_into("<HQ", page, gdtr - t, 8 * len(_GDT) - 1, gdt)
    struct.pack_into("<HQ", page, idtr - t, 0, 0)
    struct.pack_into("<IH", page, farptr - t, compat, GDT_CODE32)
    struct.pack_into("<I", page, target - t, entry)
    return bytes(page)


def write_trampoline(ram, layout, entry, start_info):
    """Write the trampoline and the identity map it runs on; return where to start."""
    pt = layout.page_tables
    ram.write(pt, struct.pack("<Q", (pt + PAGE) | 3))  # PML4[0] -> PDPT
    ram.write(pt + PAGE, struct.pack("<Q", (pt + 2 * PAGE) | 3))  # PDPT[0] -> PD
    # PD: 512 2 MiB pages, present + writable + PS: the first GiB, identity
    ram.write(pt + 2 * PAGE, b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(512)))
    ram.write(layout.trampoline, trampoline(layout, entry, start_info))
    return layout.trampoline
