# Running a native kernel: an unmodified PVH ELF image booted on vCPU 0 of a board, against
# the same Xen stub the Python guests use. The host does what Xen's toolstack and the PVH
# builder do before the first instruction -- load the segments, give the domain its console
# and xenstore pages, write hvm_start_info -- then enters the kernel at its
# XEN_ELFNOTE_PHYS32_ENTRY through pvh_boot's trampoline. docs/native-guests.md.
import os

from unicorn import x86_const as X

from micropv import boards

from . import pvh_boot
from .emu.stop import EXIT_GUEST_ERROR, Outcome, Stop
from .loader import Image, ImageError, place, read_image
from .machine import Machine, Result
from .watchdog import Watchdog
from .xen import pvconsole


def boot(machine, image, cmdline=""):
    """Load image into the machine and prepare the PVH entry; returns where vCPU 0 starts
    (the entry trampoline)."""
    layout = pvh_boot.Layout(machine.ram.size)
    place(image, machine.ram, layout.reserved_start)
    machine.e820 = pvh_boot.reserve(machine.e820, layout.reserved_start, layout.reserved_end)
    machine.pv_console, machine.pv_store = pvconsole.setup(machine.hypervisor, layout.console,
                                                           layout.store)  # fmt: skip
    start_info = pvh_boot.write_start_info(machine.ram, layout, cmdline, machine.e820)
    pc = pvh_boot.write_trampoline(machine.ram, layout, image.entry, start_info)
    vcpu = machine.vcpus[0]
    for paddr, size, vaddr in image.executable_ranges():
        vcpu.sync_code(paddr, size, vaddr)
    vcpu.fast.write(X.UC_X86_REG_RFLAGS, 0x2)  # IF, TF, VM clear
    machine.trace.event("pvh_entry", 0, entry=image.entry, start_info=start_info)
    return pc


def run_kernel(kernel, board="pvh-x86_64", cmdline="", budget_ns=None, trace=False,
               console=None, stall_s=None):  # fmt: skip
    """kernel: a path to a PVH ELF image (or a loader.Image). Returns (machine, result);
    ImageError (a ValueError) if it is not a kernel this board can boot."""
    image = kernel if isinstance(kernel, Image) else read_image(os.fsdecode(kernel))
    b = boards.get(board) if isinstance(board, str) else board
    if b.arch != "x86_64":
        raise ImageError(f"board {b.name} ({b.arch}) cannot boot a PVH x86 kernel")
    machine = Machine(b, budget_ns=budget_ns, trace=trace, console=console, native=True)
    machine.image = image
    pc = boot(machine, image, cmdline)
    return machine, run(machine, pc, stall_s)


def run(machine, pc, stall_s=None):
    """Run vCPU 0 from pc until the run ends; stall_s: end it (status 5) if the kernel does
    not leave the CPU (hypercall, hlt, trapped instruction, exception) for that many wall
    seconds -- the one case the virtual-time budget cannot see."""
    vcpu = machine.vcpus[0]
    if stall_s:
        with Watchdog([vcpu], lambda: vcpu.boundaries, stall_s) as dog:
            vcpu.stall = (
                dog,
                f"the kernel did not leave the CPU (no hypercall, hlt, exception "
                f"or trapped instruction) for {stall_s} s of wall time",
            )
            try:
                _run(machine, vcpu, pc)
            finally:
                vcpu.stall = None
    else:
        _run(machine, vcpu, pc)
    if machine.outcome is None:
        machine.finish(Outcome("guest-error", EXIT_GUEST_ERROR, "the run ended without an "
                               "outcome"))  # fmt: skip
    return Result(machine.outcome.status, machine.outcome, machine.console_text(),
                  machine.messages, machine.clock.now, machine.trace)  # fmt: skip


def _run(machine, vcpu, pc):
    try:
        vcpu.run(pc)
    except Stop as stop:
        # The clock's BudgetExceeded cannot record its outcome itself (it has no machine).
        machine.finish(stop.outcome)
        if machine.outcome.kind == "budget" and not machine.outcome.report:
            machine.outcome.report = vcpu.report()


# `micropv run KERNEL`: the run options that belong to Python guests do not apply here.
_PYTHON_ONLY = (("callback", "--callback", "the kernel chooses its own upcall method"),
                ("unmask", "--unmask", "the kernel's own event code decides"),
                ("handlers", "--handlers", "the kernel's own event code decides"),
                ("clear", "--clear", "the kernel's own event code decides"),
                ("arg", "--arg", "use --cmdline to pass values to a kernel"))  # fmt: skip


def run_from_cli(args, console):
    """Run the ELF kernel named on the command line; returns (machine, result)."""
    import sys

    for attr, flag, why in _PYTHON_ONLY:
        if getattr(args, attr, None):
            print(f"micropv: {flag} does not apply to a native kernel ({why}); ignored",
                  file=sys.stderr)  # fmt: skip
    return run_kernel(args.guest, board=args.board, cmdline=args.cmdline or "",
                      budget_ns=args.max_virtual_ns, trace=bool(args.trace), console=console,
                      stall_s=args.stall_s)  # fmt: skip
