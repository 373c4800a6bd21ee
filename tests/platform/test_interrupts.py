# Interrupt windows on the x86_64 vCPU (DESIGN §2): delivery only with IF=1 and only at HAL
# boundaries, the frame the host pushes, IST stacks, iretq, the sti shadow, waking a halted
# vCPU, and handlers that themselves use the HAL. Each guest records what it saw into a list
# held by the test; the asserts run after the run.

from micropv.platform.clock import Timer
from micropv.platform.emu.irq import host_irq
from micropv.platform.machine import Machine
from micropv.runtime.abi.xen import XEN_VERSION_MAJOR, XEN_VERSION_MINOR

from micropv import boards

BOARD = boards.get("pvh-x86_64")
LAYOUT = BOARD.runtime_layout
VEC = 0x40
SAVED_REGS = 10  # the entry stub pushes rax rbx rcx rdx rsi rdi r8 r9 r10 r11 before the trap
FRAME_SIZE = 5 * 8  # RIP, CS, RFLAGS, RSP, SS
RFLAGS_IF = 0x200


def _machine(budget_ns=10**9):
    m = Machine(BOARD, budget_ns=budget_ns, trace=True)
    return m, host_irq(m.vcpus[0])


def _frame(rt, m):
    """Inside a handler: (frame address, [rip, cs, rflags, rsp, ss]) of the interrupt."""
    frame = m.vcpus[0].reg("rsp") + SAVED_REGS * 8
    return frame, [rt.hal.r64(frame + 8 * i) for i in range(5)]


def test_pending_vector_waits_for_sti():
    m, hir = _machine()
    log = []

    def main(rt):
        rt.arch.set_vector(VEC, lambda v: log.append(("handler", v)))
        assert not rt.arch.interrupts_enabled()  # the runtime boots with IF=0
        hir.raise_vector(VEC)
        for i in range(3):
            rt.hal.r32(LAYOUT["scratch"])
            log.append(("r32", i))
        rt.arch.sti()
        log.append("sti")
        rt.hal.r32(LAYOUT["scratch"])
        log.append("r32 after sti")
        rt.hal.r32(LAYOUT["scratch"])
        log.append("end")

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [("r32", 0), ("r32", 1), ("r32", 2), "sti", ("handler", VEC),
                   "r32 after sti", "end"]  # fmt: skip
    assert hir.queue == []
    assert len(result.trace.of_kind("inject")) == 1


def test_frame_pushed_on_interrupted_stack():
    m, hir = _machine()
    seen = {}

    def main(rt):
        def handler(v):
            seen["frame"], seen["words"] = _frame(rt, m)

        rt.arch.set_vector(VEC, handler)
        rt.arch.sti()
        seen["rsp"] = m.vcpus[0].reg("rsp")  # the parked (interrupted) stack
        seen["return_point"] = rt.arch.return_point
        hir.raise_vector(VEC)
        rt.hal.r32(LAYOUT["scratch"])

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    rip, cs, rflags, rsp, ss = seen["words"]
    assert rip == seen["return_point"]
    assert cs == 0x08
    assert rflags & RFLAGS_IF
    assert rsp == seen["rsp"]
    assert ss == 0x10
    assert seen["frame"] == (seen["rsp"] & ~15) - FRAME_SIZE
    assert seen["frame"] % 16 == 8  # 16-aligned before the 40-byte push


def test_frame_aligned_when_interrupted_stack_is_not():
    # An interrupt taken inside emulated code whose RSP is 8 mod 16: the CPU aligns first.
    m, hir = _machine()
    seen = {}

    def main(rt):
        def handler(v):
            seen["frame"], seen["words"] = _frame(rt, m)

        rt.arch.set_vector(VEC, handler)
        stub = rt.arch._emit(b"\xb8\x11\x00\x00\x00\x31\xff\x0f\x01\xc1\xc3")  # vmcall; ret
        rt.arch.sti()
        # Fires inside the vmcall (the hypercall advances the clock): taken on VM entry.
        m.clock.set_timer(Timer(lambda: hir.raise_vector(VEC), "t"), m.clock.now + 1)
        rt.arch.call(stub)
        seen["after_vmcall"] = stub + 10

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    rip, cs, rflags, rsp, ss = seen["words"]
    assert rip == seen["after_vmcall"]
    assert rsp % 16 == 8  # the trampoline's `call` pushed one return address
    assert seen["frame"] == (rsp & ~15) - FRAME_SIZE
    assert (cs, ss) == (0x08, 0x10) and rflags & RFLAGS_IF


def test_ist_vector_runs_on_ist_stack():
    m, hir = _machine()
    seen = {}

    def main(rt):
        def handler(v):
            seen["rsp_in_handler"] = m.vcpus[0].reg("rsp")
            seen["frame"], seen["words"] = _frame(rt, m)

        rt.arch.set_vector(VEC, handler, ist=1)
        rt.arch.sti()
        seen["rsp"] = m.vcpus[0].reg("rsp")
        hir.raise_vector(VEC)
        rt.hal.r32(LAYOUT["scratch"])
        seen["rsp_after"] = m.vcpus[0].reg("rsp")

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    top = LAYOUT["ist_stack_top"]
    assert seen["frame"] == top - FRAME_SIZE
    assert seen["rsp_in_handler"] == top - FRAME_SIZE - SAVED_REGS * 8
    assert seen["words"][3] == seen["rsp"]  # the saved RSP is the interrupted stack
    assert seen["rsp_after"] == seen["rsp"]  # iretq switched back


def test_handler_runs_with_if_clear_and_iretq_restores_it():
    m, hir = _machine()
    log = []

    def main(rt):
        rt.arch.set_vector(VEC, lambda v: log.append(("in handler", rt.arch.interrupts_enabled())))
        rt.arch.sti()
        hir.raise_vector(VEC)
        log.append(("after", rt.arch.interrupts_enabled()))  # delivered at this HAL call

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [("in handler", False), ("after", True)]


def test_sti_shadow_interrupt_taken_after_hlt():
    m, hir = _machine()
    seen = []

    def main(rt):
        rt.arch.set_vector(VEC, lambda v: seen.append(_frame(rt, m)[1][0]))  # saved RIP
        hir.raise_vector(VEC)  # pending while IF=0
        rt.arch.safe_halt()  # sti; hlt; ret
        seen.append(rt.arch._stubs["safe_halt"])
        seen.append(rt.arch.interrupts_enabled())

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    saved_rip, stub, if_after = seen
    assert saved_rip == stub + 2  # after the hlt, not between sti (+0) and hlt (+1)
    assert if_after
    kinds = [e[2] for e in result.trace.events if e[2] in ("hlt", "wake", "inject")]
    assert kinds == ["hlt", "wake", "inject"]
    assert result.trace.of_kind("hlt")[0][3]["rip"] == stub + 1


def test_halted_vcpu_wakes_for_host_timer_interrupt():
    m, hir = _machine()
    times = {}

    def main(rt):
        rt.arch.set_vector(VEC, lambda v: times.setdefault("handler", []).append(m.clock.now))
        times["deadline"] = m.clock.now + 50_000
        m.clock.set_timer(Timer(lambda: hir.raise_vector(VEC), "t"), times["deadline"])
        times["before"] = m.clock.now
        rt.arch.safe_halt()
        times["after"] = m.clock.now

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert times["before"] < times["deadline"]
    assert len(times["handler"]) == 1
    assert times["deadline"] <= times["handler"][0] <= times["after"]
    assert times["deadline"] <= result.virtual_ns < times["deadline"] + 10_000


def test_handler_may_make_hal_calls_and_hypercalls():
    m, hir = _machine()
    got = {}

    def main(rt):
        def handler(v):
            got["mono"] = rt.clock_monotonic()  # HAL reads + rdtsc stub
            got["version"] = rt.hc.xen_version(0)  # a hypercall through the hypercall page
            got["leaf0"] = rt.arch.cpuid(0)  # clobbers rax, rbx, rcx, rdx

        rt.arch.set_vector(VEC, handler)
        got["expected"] = rt.arch.cpuid(0x40000000)
        rt.arch.sti()
        hir.raise_vector(VEC)
        got["cpuid"] = rt.arch.cpuid(0x40000000)  # the interrupt is taken at this boundary
        got["injects"] = len(m.trace.of_kind("inject"))

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert got["injects"] == 1
    assert got["mono"] > 0
    assert got["version"] == XEN_VERSION_MAJOR << 16 | XEN_VERSION_MINOR
    assert got["cpuid"] == got["expected"]
    assert got["expected"][1:] == (0x566E6558, 0x65584D4D, 0x4D4D566E)  # "XenVMMXenVMM"


def test_interrupt_mid_stub_preserves_scratch_registers():
    # The interrupt arrives on VM entry after a vmcall inside a stub; the handler's own HAL
    # calls clobber every scratch register, and the entry stub must hand them all back.
    m, hir = _machine()
    regs = ("rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11")
    values = {r: 0x1111_0000_0000_0000 * (i + 1) + i for i, r in enumerate(regs)}
    seen = {}

    def main(rt):
        def handler(v):
            seen["saved_rip"] = _frame(rt, m)[1][0]
            rt.clock_monotonic()
            rt.hc.xen_version(0)
            rt.arch.cpuid(0)
            rt.arch.call(clobber)

        rt.arch.set_vector(VEC, handler)
        # mov r64, imm64 for each register, mov eax, 17; xor edi, edi; vmcall; ret
        code = b""
        for r in regs:
            n = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10",
                 "r11").index(r)  # fmt: skip
            code += bytes([0x48 | (n >> 3), 0xB8 | (n & 7)]) + values[r].to_bytes(8, "little")
        code += b"\xb8\x11\x00\x00\x00\x31\xff\x0f\x01\xc1"
        stub = rt.arch._emit(code + b"\xc3")
        seen["after_vmcall"] = stub + len(code)
        # The same loads with other values: what the handler runs to clobber everything.
        clobber = rt.arch._emit(code.replace(b"\x11\x11", b"\x22\x22") + b"\xc3")
        rt.arch.sti()
        m.clock.set_timer(Timer(lambda: hir.raise_vector(VEC), "t"), m.clock.now + 1)
        seen["out"] = rt.arch.call(stub, (), ("rax",) + regs)
        seen["version"] = rt.hc.xen_version(0)

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert seen["saved_rip"] == seen["after_vmcall"]  # taken inside the stub
    assert seen["out"][0] == seen["version"]  # rax: the hypercall's result
    assert dict(zip(regs, seen["out"][1:])) == values


def test_all_pending_vectors_delivered_before_the_hal_call():
    # Two interrupts pending with IF=1: both are taken (in raise order) before the HAL call
    # does its work, as a CPU takes the second right after the first handler's iretq.
    m, hir = _machine()
    counter = 0x200000  # free RAM, above the runtime's areas
    log = []

    def main(rt):
        def handler(v):
            log.append(v)
            rt.hal.w32(counter, rt.hal.r32(counter) + 1)

        rt.arch.set_vector(VEC, handler)
        rt.arch.set_vector(VEC + 1, handler)
        rt.hal.w32(counter, 0)
        rt.arch.sti()
        hir.raise_vector(VEC + 1)
        hir.raise_vector(VEC)
        log.append(("read", rt.hal.r32(counter)))

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [VEC + 1, VEC, ("read", 2)]
