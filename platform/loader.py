# Loading a PVH kernel: an ELF file whose XEN_ELFNOTE_PHYS32_ENTRY note names the 32-bit
# entry point, with its PT_LOAD segments copied to their physical addresses, as Xen's libelf
# does for a PVH domU (xen/common/libelf: notes from PT_NOTE segments, else SHT_NOTE sections).
import io
from dataclasses import dataclass, field

from micropv.runtime.abi import elfnote as N

ELF_MAGIC = b"\x7fELF"
EM_386 = 3
EM_X86_64 = 62
PF_X = 1
_MACHINES = {EM_386: "EM_386", EM_X86_64: "EM_X86_64"}


class ImageError(ValueError):
    """The file is not a PVH image this board can boot; the message says why."""


@dataclass
class Segment:
    paddr: int
    data: bytes
    memsz: int
    executable: bool
    vaddr: int = None  # where the kernel is linked to run it, when that differs

    @property
    def end(self):
        return self.paddr + self.memsz


@dataclass
class Image:
    path: str
    entry: int  # XEN_ELFNOTE_PHYS32_ENTRY: a physical address, entered in 32-bit mode
    segments: list
    elfclass: int  # 32 or 64 (Mini-OS's PVH build is an ELF32 file holding 64-bit code)
    machine: str
    note_in: str  # where the entry note was found: "PT_NOTE" or the section's name
    symbols: dict = field(default_factory=dict)  # name -> address, when the file keeps them

    def executable_ranges(self):
        """(paddr, size, vaddr) of code to scan for the instructions the host must trap.
        Every loaded byte if no segment says it is executable."""
        code = [s for s in self.segments if s.executable] or self.segments
        return [(s.paddr, s.memsz, s.vaddr) for s in code]


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_image(path):
    """Parse and check a PVH kernel; ImageError with a readable reason if it is not one."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ImageError(f"{path}: {e.strerror}") from None
    if raw[:4] != ELF_MAGIC:
        raise ImageError(f"{path}: not an ELF file (a kernel must be an ELF image, a Python "
                         "guest a .py file)")  # fmt: skip
    try:
        elf = ELFFile(io.BytesIO(raw))
        machine = elf["e_machine"]
        machine = _MACHINES.get(machine, machine)
        if machine not in _MACHINES.values():
            raise ImageError(f"{path}: an ELF file for {machine}, not x86 (EM_X86_64 or "
                             "EM_386): the pvh-x86_64 board cannot run it")  # fmt: skip
        segments = []
        for seg in elf.iter_segments():
            h = seg.header
            if h.p_type != "PT_LOAD" or h.p_memsz == 0:
                continue  # PT_INTERP, PT_DYNAMIC, GNU_STACK... and empty PT_LOADs: ignored
            if h.p_filesz > h.p_memsz:
                raise ImageError(f"{path}: a PT_LOAD segment at {h.p_paddr:#x} has more "
                                 "file bytes than memory bytes")  # fmt: skip
            segments.append(Segment(h.p_paddr, seg.data(), h.p_memsz, bool(h.p_flags & PF_X),
                                    h.p_vaddr))  # fmt: skip
        entry, where = _phys32_entry(elf)
        symbols = _symbols(elf)
    except ELFError as e:
        raise ImageError(f"{path}: a damaged ELF file ({e})") from None
    if entry is None:
        raise ImageError(f"{path}: no XEN_ELFNOTE_PHYS32_ENTRY note (type 18, owner \"Xen\") "
                         "in a PT_NOTE segment or a note section: not a PVH kernel. Linux "
                         "bzImages, multiboot-only and Xen PV kernels are not PVH "
                         "images")  # fmt: skip
    if not segments:
        raise ImageError(f"{path}: no PT_LOAD segment with contents")
    if not any(s.paddr <= entry < s.end for s in segments):
        raise ImageError(f"{path}: the PVH entry point {entry:#x} is not inside any loaded "
                         "segment")  # fmt: skip
    return Image(path, entry, segments, elf.elfclass, machine, where, symbols)


def _phys32_entry(elf):
    """(entry, where) from the first PHYS32_ENTRY note, PT_NOTE segments first."""
    for seg in elf.iter_segments():
        if seg.header.p_type == "PT_NOTE":
            entry = _from_notes(seg.iter_notes())
            if entry is not None:
                return entry, "PT_NOTE"
    for sec in elf.iter_sections():
        if sec.header.sh_type == "SHT_NOTE":
            entry = _from_notes(sec.iter_notes())
            if entry is not None:
                return entry, f"section {sec.name}"
    return None, None


def _from_notes(notes):
    for note in notes:
        if note["n_name"] == "Xen" and note["n_type"] == N.XEN_ELFNOTE_PHYS32_ENTRY:
            desc = note["n_descdata"]
            if len(desc) in (4, 8):  # libelf's elf_note_numeric takes 1, 2, 4 or 8 bytes
                return int.from_bytes(desc, "little")
    return None


def _symbols(elf):
    sec = elf.get_section_by_name(".symtab")
    if sec is None:
        return {}
    out = {}
    for sym in sec.iter_symbols():
        if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE", "STT_OBJECT"):
            out.setdefault(sym.name, sym["st_value"])
    return out


def place(image, ram, limit):
    """Copy the segments into guest RAM, zeroing what the file does not hold (.bss). Every
    byte must land below `limit` (where the host's reserved pages start)."""
    for s in image.segments:
        if s.paddr < 0 or s.end > limit:
            raise ImageError(f"{image.path}: segment at {s.paddr:#x}-{s.end:#x} lies outside "
                             f"the guest RAM this board gives a kernel (0-{limit:#x})")  # fmt: skip
    for s in image.segments:
        ram.write(s.paddr, s.data)
        if s.memsz > len(s.data):
            ram.write(s.paddr + len(s.data), bytes(s.memsz - len(s.data)))
