# PVH guest on x86_64 against the Xen stub: long mode, paging off, the guest's own GDT/IDT.
from . import Board

MiB = 1 << 20

BOARD = Board(
    name="pvh-x86_64",
    arch="x86_64",
    description="x86_64 PVH domU on Unicorn: hypercall page via MSR 0x40000000, "
    "callback vector or per-vCPU LAPIC upcall vector",
    ram_size=32 * MiB,
    runtime_layout={
        "code": 0x100000,  # runtime stubs and trampolines (64 KiB)
        "code_size": 0x10000,
        "tables": 0x110000,  # GDT at +0, IDT at +0x1000, TSS at +0x2000
        "hypercall_page": 0x113000,
        "scratch": 0x114000,  # CPUID results, ucall records (one page)
        "ist_stack_top": 0x120000,  # 16 KiB IST1 stack below this
        "stack_top": 0x140000,  # 64 KiB boot stack below this
        "shared_info_gfn": 0x140,  # the runtime maps shared_info at 0x140000
        "ram_size": 32 * MiB,
    },
    memory_map=(
        (0x0, 0x9F000, 1),  # RAM below the legacy hole
        (0x9F000, 0x61000, 2),  # legacy VGA/BIOS hole: reserved
        (0x100000, 31 * MiB, 1),
    ),
    callbacks=("vector", "lapic", "gsi", "intx"),
    # PVH has no vIOAPIC or vPIC: hvm_set_callback_via stores GSI/INTx and raises nothing.
    inert_callbacks=("gsi", "intx"),
    default_callback="vector",
)
