# riscv64 domU against the Xen stub: S-mode standing for VS-mode, SBI and Xen hypercalls over
# `ecall`, event-channel upcalls through sip. The ABI is micropv's own (docs/riscv64.md):
# upstream Xen defines no hypercall or upcall ABI for RISC-V guests yet.
from . import Board

MiB = 1 << 20

BOARD = Board(
    name="sbi-riscv64",
    arch="riscv64",
    description="riscv64 S-mode domU on Unicorn: SBI 2.0, Xen hypercalls on SBI extension "
    "0x0A58454E, upcall as supervisor external (seip) or software (ssip) interrupt",
    ram_size=32 * MiB,
    runtime_layout={
        "code": 0x100000,  # runtime stubs, vector table and entry code (64 KiB)
        "code_size": 0x10000,
        "scratch": 0x114000,  # argument structs, ucall records (one page)
        "stack_top": 0x140000,  # 64 KiB boot stack below this
        "shared_info_gfn": 0x140,  # the runtime maps shared_info at 0x140000
        "ram_size": 32 * MiB,
    },
    memory_map=((0x0, 32 * MiB, 1),),  # all RAM
    callbacks=("seip", "ssip"),
    default_callback="seip",  # what Xen presets HVM_PARAM_CALLBACK_IRQ to
    # The `time` CSR counts at 10 MHz (a common RISC-V timebase): ns = ticks * 100, which
    # pvclock expresses exactly as ((ticks << 7) * 0xC8000000) >> 32.
    counter_hz=10_000_000,
    pvclock_mul=0xC8000000,
    pvclock_shift=7,
)
