# The runtime's hand-encoded machine code says what its comments say (checked with capstone),
# and the host's boundary hook sees every HAL call.
import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from micropv.platform.machine import Machine
from micropv.runtime.arch import x86_64 as A

from micropv import boards

MD = Cs(CS_ARCH_X86, CS_MODE_64)


def asm(code):
    return [f"{i.mnemonic} {i.op_str}".strip() for i in MD.disasm(code, 0x1000)]


@pytest.mark.parametrize(
    "code, expected",
    [
        (A._CLI, ["cli", "ret"]),
        (A._STI, ["sti", "ret"]),
        (A._SAFE_HALT, ["sti", "hlt", "ret"]),
        (A._HALT, ["hlt", "ret"]),
        (A._SAVE_FLAGS_CLI, ["pushfq", "pop rax", "cli", "ret"]),
        (A._RESTORE_FLAGS, ["push rdi", "popfq", "ret"]),
        (A._CPUID, ["mov eax, edi", "mov ecx, esi", "cpuid", "ret"]),
        (A._WRMSR, ["mov ecx, edi", "mov eax, esi", "wrmsr", "ret"]),
        (A._RDMSR, ["mov ecx, edi", "rdmsr", "shl rdx, 0x20", "or rax, rdx", "ret"]),
        (A._RDTSC, ["rdtsc", "shl rdx, 0x20", "or rax, rdx", "ret"]),
        (A._VMCALL, ["vmcall", "ret"]),
        (A._UCALL, ["mov eax, edi", "mov edx, 0x1000", "out dx, eax", "ret"]),
        (A._MMIO_READ32, ["mov eax, dword ptr [rdi]", "ret"]),
        (A._MMIO_WRITE32, ["mov dword ptr [rdi], esi", "ret"]),
        (A._TRAMPOLINE + A._RETURN_POINT, ["call r11", "hlt"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_stub_encodings(code, expected):
    assert asm(code) == expected


def test_interrupt_entry_saves_and_restores_the_same_registers():
    saves = asm(A._ENTRY_SAVE)
    restores = asm(A._ENTRY_RESTORE)
    assert all(s.startswith("push ") for s in saves)
    assert restores[-1] == "iretq"
    popped = [r.split()[1] for r in restores[:-1]]
    assert popped == [s.split()[1] for s in reversed(saves)]


def test_gate_and_tss_descriptor_fields():
    g = A.gate(0x123456789ABC, ist=1)
    lo, hi = int.from_bytes(g[:8], "little"), int.from_bytes(g[8:], "little")
    assert lo & 0xFFFF == 0x9ABC and (lo >> 48) & 0xFFFF == 0x5678 and hi == 0x1234
    assert (lo >> 16) & 0xFFFF == 0x08 and (lo >> 32) & 7 == 1 and (lo >> 40) & 0xFF == 0x8E
    d = A.tss_descriptor(0x112000)
    lo = int.from_bytes(d[:8], "little")
    assert lo & 0xFFFF == 103 and (lo >> 16) & 0xFFFFFF == 0x112000 and (lo >> 40) & 0xFF == 0x89


def test_boundary_hook_sees_every_hal_call():
    machine = Machine(boards.get("pvh-x86_64"), budget_ns=10**9)
    seen = []

    def main(rt):
        rt.hal.boundary_hook = lambda hal, op, addr, size, rw: seen.append(op)
        rt.hal.r32(0x1000)
        rt.hal.w64(0x1000, 5)
        rt.arch.cli()
        rt.hal.boundary_hook = None

    result = machine.run_python(main)
    assert result.status == 0
    assert seen == ["r32", "w64", "run"]
