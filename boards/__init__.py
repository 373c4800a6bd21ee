# Boards: data that composes an architecture, a memory map, vCPUs and callback methods.
# A board holds no logic; platform/machine.py builds a machine from one.
from dataclasses import dataclass, field
from importlib import import_module


@dataclass(frozen=True)
class Board:
    name: str
    arch: str
    description: str
    ram_size: int
    # Guest-physical addresses the runtime's boot code uses; handed to it as hal.layout.
    runtime_layout: dict
    # The guest's e820 view: (addr, size, type) with E820 type numbers.
    memory_map: tuple
    vcpus: int = 1
    callbacks: tuple = ()
    default_callback: str = ""
    # Methods the board accepts but that never deliver an event (the guest can set them up;
    # nothing arrives). The pytest plugin's callback_method runs over the others.
    inert_callbacks: tuple = ()
    cpu_vendor: str = "intel"  # intel: the hypercall page uses vmcall; amd: vmmcall
    cpuid_base: int = 0x40000000
    hypercall_msr: int = 0x40000000
    lapic_base: int = 0xFEE00000
    # The counter pvclock scales (x86 TSC, RISC-V `time`) and vcpu_time_info's scale for it:
    # ns = ((ticks << shift) * mul) >> 32, exact for both boards' frequencies.
    counter_hz: int = 2_000_000_000
    pvclock_mul: int = 0x80000000
    pvclock_shift: int = 0
    extra: dict = field(default_factory=dict)


_BOARDS = {"pvh-x86_64": "pvh_x86_64", "sbi-riscv64": "sbi_riscv64"}


def names():
    return sorted(_BOARDS)


def get(name):
    """The board called name; a ValueError naming the known boards otherwise."""
    module = _BOARDS.get(name)
    if module is None:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(names())}")
    return import_module(f"{__name__}.{module}").BOARD
