# Native guests: PVH kernels of our own (tests/native/, C and assembly) built here with the
# system gcc, booted on pvh-x86_64 the way `micropv run KERNEL` boots them; and the loader's
# answers to files that are not PVH kernels (those ELF files are written by hand below).
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from micropv.platform import native, pvh_boot
from micropv.platform.loader import ImageError, read_image

SRC = Path(__file__).resolve().parent.parent / "native"
CFLAGS = ["-O2", "-ffreestanding", "-fno-pie", "-nostdlib", "-static", "-mno-red-zone",
          "-mgeneral-regs-only", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
          "-Wall", "-Wextra", "-Werror"]  # fmt: skip


@pytest.fixture(scope="session")
def kernels(tmp_path_factory):
    """{"elf64": path, "elf32": path}: the test kernel linked as an ELF64 with a PT_NOTE entry
    note, and as an ELF32 with the note in a section only (Mini-OS's shape)."""
    gcc, ld = shutil.which("gcc"), shutil.which("ld")
    if gcc is None or ld is None:
        pytest.skip("the native test kernels are built with the system gcc and GNU ld, and "
                    f"{'gcc' if gcc is None else 'ld'} is not on PATH: native-kernel tests "
                    "NOT run")  # fmt: skip
    out = tmp_path_factory.mktemp("native")
    objs = []
    for src in ("start.S", "kernel.c"):
        obj = out / (src.split(".")[0] + ".o")
        subprocess.run([gcc, *CFLAGS, "-c", str(SRC / src), "-o", str(obj)], check=True,
                       capture_output=True, text=True)  # fmt: skip
        objs.append(str(obj))
    elf64, elf32 = out / "kernel.elf", out / "kernel32.elf"
    subprocess.run([ld, "-nostdlib", "-static", "-T", str(SRC / "kernel.ld"), *objs, "-o",
                    str(elf64)], check=True, capture_output=True, text=True)  # fmt: skip
    subprocess.run([ld, "-nostdlib", "-static", "-T", str(SRC / "kernel-sectionnote.ld"),
                    "--oformat=elf32-i386", *objs, "-o", str(elf32)], check=True,
                   capture_output=True, text=True)  # fmt: skip
    return {"elf64": elf64, "elf32": elf32}


def boot(kernel, cmdline, **kw):
    kw.setdefault("budget_ns", 10**9)
    kw.setdefault("stall_s", 30)
    machine, result = native.run_kernel(kernel, cmdline=cmdline, **kw)
    return machine, result


def assert_clean(result):
    assert "FAIL" not in result.console, result.console
    assert result.status == 0, (result.outcome.message, result.outcome.report, result.console)


# Booting, printing, the entry contract ----------------------------------------------------
def test_hello_boots_prints_over_console_io_and_the_ring_and_exits_0(kernels):
    machine, r = boot(kernels["elf64"], "test=hello extra words")
    assert_clean(r)
    assert r.outcome.kind == "shutdown" and "poweroff" in r.outcome.message
    text = r.console
    # the 32-bit entry's own hypercall, console_io, then the PV ring (its CRs kept as sent)
    assert "start32: a hypercall from 32-bit protected mode" in text
    assert "hello from the test kernel over console_io" in text
    assert "hello from the test kernel over the PV console ring" in text
    assert "cmdline: test=hello extra words" in text
    assert "grant_table_op: -38" in text  # grant operations: -ENOSYS for now
    assert "done: hello" in text
    assert machine.pv_console.drained > 0
    assert machine.pv_console.notified >= 3  # drained on each notification, not only on yield
    cons = machine.ram.u32(machine.pv_console.gpa + 3080)
    assert cons == machine.ram.u32(machine.pv_console.gpa + 3084)  # out_cons caught up
    assert machine.hypervisor.grant_frames.keys() == {0, 1}


def test_the_kernel_sees_the_reserved_special_pages_in_its_memory_map(kernels):
    machine, r = boot(kernels["elf64"], "test=hello")
    assert_clean(r)
    lay = pvh_boot.Layout(machine.ram.size)
    assert (lay.reserved_start, lay.reserved_end - lay.reserved_start, 2) in machine.e820
    assert f"memmap 3: {lay.reserved_start:x}-{lay.reserved_end:x} type 2" in r.console


def test_a_full_console_ring_waits_for_the_backend(kernels):
    _, r = boot(kernels["elf64"], "test=flood")
    assert_clean(r)
    lines = [ln for ln in r.console.splitlines() if ln.startswith("flood line")]
    assert len(lines) == 100 and lines[-1].startswith("flood line 99:")


def test_elf32_kernel_with_the_entry_note_only_in_a_section(kernels):
    image = read_image(str(kernels["elf32"]))
    assert image.elfclass == 32 and image.note_in == "section .note.Xen"
    _, r = boot(kernels["elf32"], "test=timer method=vector n=2")
    assert_clean(r)
    assert "timer: 2 ticks" in r.console


# Timer interrupts with each callback method -----------------------------------------------
@pytest.mark.parametrize("method", ["vector", "lapic"])
def test_timer_interrupts_after_set_timer_op_and_sti_hlt(kernels, method):
    machine, r = boot(kernels["elf64"], f"test=timer method={method} n=5", trace=True)
    assert_clean(r)
    assert "timer: 5 ticks in 50" in r.console and f"with method {method}" in r.console
    injects = [e for e in r.trace.of_kind("inject")]
    vector = 0x21 if method == "lapic" else 0x20
    assert sum(1 for e in injects if e[3]["vector"] == vector) >= 5
    eois = len(r.trace.of_kind("eoi"))
    assert (eois >= 5) if method == "lapic" else eois == 0
    assert r.virtual_ns >= 5_000_000  # five 1 ms timers, in virtual time


def test_grant_frames_can_be_mapped_above_guest_ram(kernels):
    # Mini-OS's PVH build puts them just above its last e820 entry; Xen adds them to the p2m
    # wherever the guest asks (arch/x86/mm.c xenmem_add_to_physmap_one).
    machine, r = boot(kernels["elf64"], "test=grant_above")
    assert_clean(r)
    assert "grant_above: frame 0 at 30001" in r.console
    hv = machine.hypervisor
    assert hv.grant_frames == {0: 0x30001} and list(hv.grant_pages) == [0x30001]


# CPU exceptions through the guest's IDT ---------------------------------------------------
def test_exceptions_are_delivered_through_the_guests_idt(kernels):
    machine, r = boot(kernels["elf64"], "test=exceptions")
    assert_clean(r)
    for name in ("#UD", "#BP", "#DE", "#GP", "#PF read", "#PF write", "#PF write-protect",
                 "#PF fetch", "#GP rdmsr", "int 0x80", "#NM"):  # fmt: skip
        assert f"exception {name}: " in r.console
    assert "WRONG" not in r.console
    # error codes as the CPU pushes them, CR2 for the page faults
    assert "exception #PF write-protect: vector 14 error 3 cr2 40000020" in r.console
    assert "exception #PF fetch: vector 14 error 10 cr2 50000000" in r.console
    # each fault exactly once: no #DF from QEMU's stale "exception in flight"
    vectors = [v for v, _, _ in machine.vcpus[0].exceptions]
    assert vectors == [6, 3, 0, 13, 14, 14, 14, 14, 13, 0x80, 7]


def test_an_exception_in_32_bit_mode_goes_through_a_32_bit_idt(kernels):
    machine, r = boot(kernels["elf64"], "idt32")
    assert_clean(r)
    assert "idt32: 1 #UD taken through a 32-bit IDT" in r.console
    assert list(machine.vcpus[0].exceptions)[0][:2] == (6, None)


@pytest.mark.parametrize("cmdline, mode, insn", [
    ("test=triple", "64-bit", "ud2"),
    ("triple32", "32-bit protected", "ud2"),
])  # fmt: skip
def test_a_fault_with_no_usable_gate_is_a_triple_fault(kernels, cmdline, mode, insn):
    _, r = boot(kernels["elf64"], cmdline)
    assert r.status == 3 and r.outcome.kind == "fault"
    assert "triple fault" in r.outcome.message and "#DF" in r.outcome.message
    rep = r.outcome.report
    assert "rip=" in rep and "cr0=" in rep and f"mode: {mode}" in rep
    assert any(ln.startswith("  => ") and insn in ln for ln in rep.splitlines()), rep


# How a run ends ---------------------------------------------------------------------------
@pytest.mark.parametrize("cmdline, status, kind", [
    ("test=exit3", 3, "shutdown"),  # kmain returns 3: a ucall carries it, then shutdown(crash)
    ("test=crash", 1, "shutdown"),  # SCHEDOP_shutdown(crash) alone
    ("test=idle", 4, "deadlock"),  # sti; hlt with nothing armed
    ("test=yield", 5, "budget"),  # yields forever: the virtual budget ends it
    ("test=nosuchtest", 2, "shutdown"),
])  # fmt: skip
def test_exit_statuses(kernels, cmdline, status, kind):
    _, r = boot(kernels["elf64"], cmdline, budget_ns=2_000_000)
    assert (r.status, r.outcome.kind) == (status, kind), r.outcome.message


def test_a_kernel_that_never_leaves_the_cpu_is_stopped_by_the_stall_watchdog(kernels):
    _, r = boot(kernels["elf64"], "test=spin", stall_s=0.5)
    assert r.status == 5 and r.outcome.kind == "stall"
    assert "did not leave the CPU" in r.outcome.message


# The command line --------------------------------------------------------------------------
def micropv(*args):
    return subprocess.run([sys.executable, "-m", "micropv.platform.cli", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_micropv_run_boots_a_kernel_with_trace_and_says_callback_does_not_apply(kernels, tmp_path):
    out = tmp_path / "trace.json"
    r = micropv(
        "run",
        str(kernels["elf64"]),
        "--cmdline",
        "test=timer method=lapic n=2",
        "--callback",
        "vector",
        "--trace",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "--callback does not apply to a native kernel" in r.stderr
    assert "timer: 2 ticks" in r.stdout and "method lapic" in r.stdout
    events = json.loads(out.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {e.get("name") for e in events}
    assert {"hvm_op", "set_timer_op", "sched_op"} <= names


def test_micropv_run_crash_report_shows_registers_and_disassembly(kernels):
    r = micropv("run", str(kernels["elf64"]), "--cmdline", "test=triple")
    assert r.returncode == 3
    assert "triple fault" in r.stderr and "registers at" in r.stderr
    assert "=> 0x" in r.stderr and "ud2" in r.stderr


# The loader: what is not a PVH kernel, and what it tolerates ------------------------------
def elf64(segments, notes_in="segment", machine=62, interp=False, entry_note=0x100000):
    """A minimal ELF64 file: segments [(paddr, data, memsz, flags)], an optional
    PHYS32_ENTRY note in a PT_NOTE segment ("segment"), a section ("section") or nowhere."""
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", entry_note)
    phdrs, blobs = [], []
    off = 0x1000
    for paddr, data, memsz, flags in segments:
        phdrs.append((1, flags, off, paddr, paddr, len(data), memsz, 0x1000))
        blobs.append((off, data))
        off += (len(data) + 0xFFF) & ~0xFFF or 0x1000
    note_off = off
    blobs.append((note_off, note))
    if notes_in == "segment":
        phdrs.append((4, 4, note_off, 0, 0, len(note), len(note), 4))
    if interp:
        blobs.append((note_off + 0x100, b"/lib/ld.so\0"))
        phdrs.append((3, 4, note_off + 0x100, 0, 0, 11, 11, 1))
    shoff, shnum, shstrndx = 0, 0, 0
    shstr = b"\0.note.Xen\0.shstrtab\0"
    sections = b""
    if notes_in == "section":
        shstr_off = note_off + 0x200
        blobs.append((shstr_off, shstr))
        shoff = note_off + 0x300
        sections = (bytes(64)
                    + struct.pack("<IIQQQQIIQQ", 1, 7, 2, 0, note_off, len(note), 0, 0, 4, 0)
                    + struct.pack("<IIQQQQIIQQ", 11, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1,
                                  0))  # fmt: skip
        shnum, shstrndx = 3, 2
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry_note, 64, shoff, 0, 64,
                              56, len(phdrs), 64, shnum, shstrndx)  # fmt: skip
    size = max([o + len(d) for o, d in blobs] + [shoff + len(sections)])
    image = bytearray(size)
    image[: len(hdr)] = hdr
    for i, ph in enumerate(phdrs):
        struct.pack_into("<IIQQQQQQ", image, 64 + 56 * i, *ph)
    for o, d in blobs:
        image[o : o + len(d)] = d
    if sections:
        image[shoff : shoff + len(sections)] = sections
    return bytes(image)


# hlt with interrupts off would end the run; `sti; hlt` with nothing armed is a deadlock (4)
_IDLE = b"\xfb\xf4"


@pytest.mark.parametrize("blob, message", [
    (b"#!/bin/sh\necho hi\n", "not an ELF file"),
    (elf64([(0x100000, _IDLE, 2, 5)], machine=183), "EM_AARCH64"),
    (elf64([(0x100000, _IDLE, 2, 5)], notes_in="none"), "no XEN_ELFNOTE_PHYS32_ENTRY"),
    (elf64([(0x100000, _IDLE, 2, 5)], entry_note=0x200000), "not inside any loaded segment"),
    (elf64([(0x100000, _IDLE, 2, 5), (0x4000000, b"x", 1, 6)]), "outside the guest RAM"),
    (elf64([(0x100000, _IDLE, 2, 5), (0x1FFF000, b"x", 1, 6)]), "outside the guest RAM"),
])  # fmt: skip
def test_loader_rejects_what_is_not_a_pvh_kernel_with_a_reason(tmp_path, blob, message):
    path = tmp_path / "k"
    path.write_bytes(blob)
    with pytest.raises(ImageError, match=message):
        native.run_kernel(path)
    r = micropv("run", str(path))
    assert r.returncode == 2 and message in r.stderr


@pytest.mark.parametrize("notes_in", ["segment", "section"])
def test_loader_tolerates_an_empty_pt_load_at_0_and_a_pt_interp(tmp_path, notes_in):
    path = tmp_path / "k"
    path.write_bytes(elf64([(0, b"", 0, 6), (0x100000, _IDLE, 0x3000, 7)], notes_in=notes_in,
                           interp=True))  # fmt: skip
    image = read_image(str(path))
    assert image.entry == 0x100000 and len(image.segments) == 1
    assert image.note_in == ("PT_NOTE" if notes_in == "segment" else "section .note.Xen")
    machine, r = native.run_kernel(path, budget_ns=10**6)
    assert r.status == 4 and r.outcome.kind == "deadlock"  # it ran: sti; hlt, then nothing
    assert machine.ram.read(0x100002, 0x2FFE) == bytes(0x2FFE)  # .bss zeroed


def test_a_kernel_linked_at_0_is_entered_at_0(tmp_path):
    # Mini-OS's PVH build: PHYS32_ENTRY = 0. Unicorn must not take 0 for its stop address.
    path = tmp_path / "k"
    path.write_bytes(elf64([(0, _IDLE, 0x1000, 7)], entry_note=0))
    machine, r = native.run_kernel(path, budget_ns=10**6)
    assert r.status == 4 and r.outcome.kind == "deadlock", r.outcome.message  # sti; hlt ran


def test_reserve_cuts_the_special_pages_out_of_ram():
    e820 = [(0, 0x9F000, 1), (0x9F000, 0x61000, 2), (0x100000, 0x1F00000, 1)]
    out = pvh_boot.reserve(e820, 0x1FF8000, 0x2000000)
    assert out == [(0, 0x9F000, 1), (0x9F000, 0x61000, 2), (0x100000, 0x1EF8000, 1),
                   (0x1FF8000, 0x8000, 2)]  # fmt: skip
