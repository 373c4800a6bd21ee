# Hypercalls end to end: Xen discovery by CPUID, the hypercall page, the x86_64 register
# convention, error results, CPL checks, memory_op and xen_version, each checked from a guest
# running on the emulated CPU against the Xen stub (reference/xen-abi.md §1, §8, §12, §13).
import dataclasses

from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from micropv.platform.machine import Machine
from micropv.platform.xen.errors import XenError
from micropv.runtime import hypervisor as rhv
from micropv.runtime.abi import cpuid as C
from micropv.runtime.abi import memory as M
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import version as V
from micropv.runtime.abi import xen as X
from micropv.runtime.shared_info import map_shared_info

from micropv import boards

BOARD = boards.get("pvh-x86_64")
LAYOUT = BOARD.runtime_layout
PAGE = LAYOUT["hypercall_page"]
RAM_SIZE = BOARD.ram_size
U64 = (1 << 64) - 1
DATA = 0x200000  # free guest RAM, well above everything the runtime uses at boot
FAR = 1 << 40  # far outside guest RAM


def run(main, board=BOARD, setup=None):
    """Run main(rt) on a fresh machine; setup(machine) runs first. -> (machine, result)."""
    m = Machine(board, budget_ns=10**9, trace=True)
    if setup is not None:
        setup(m)
    return m, m.run_python(main)


def emit(rt, code):
    """Place machine code in the runtime's code area; returns its address."""
    return rt.arch._emit(bytes(code))


def u32(v):
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def u64(v):
    return (v & U64).to_bytes(8, "little")


def add_to_physmap(rt, domid=X.DOMID_SELF, space=M.XENMAPSPACE_shared_info, idx=0, gpfn=0x300):
    arg = rt.args.alloc(M.ADD_TO_PHYSMAP_SIZE)
    try:
        rt.hal.write(arg, bytes(M.ADD_TO_PHYSMAP_SIZE))
        rt.hal.w16(arg + M.ADD_TO_PHYSMAP_domid, domid)
        rt.hal.w32(arg + M.ADD_TO_PHYSMAP_space, space)
        rt.hal.w64(arg + M.ADD_TO_PHYSMAP_idx, idx)
        rt.hal.w64(arg + M.ADD_TO_PHYSMAP_gpfn, gpfn)
        return rt.hc.memory_op(M.XENMEM_add_to_physmap, arg)
    finally:
        rt.args.free(arg)


def remove_from_physmap(rt, gpfn, domid=X.DOMID_SELF):
    arg = rt.args.alloc(M.REMOVE_FROM_PHYSMAP_SIZE)
    try:
        rt.hal.write(arg, bytes(M.REMOVE_FROM_PHYSMAP_SIZE))
        rt.hal.w16(arg + M.REMOVE_FROM_PHYSMAP_domid, domid)
        rt.hal.w64(arg + M.REMOVE_FROM_PHYSMAP_gpfn, gpfn)
        return rt.hc.memory_op(M.XENMEM_remove_from_physmap, arg)
    finally:
        rt.args.free(arg)


def current_reservation(rt, domid=X.DOMID_SELF):
    arg = rt.args.alloc(M.DOMID_ARG_SIZE)
    try:
        rt.hal.w16(arg + M.DOMID_ARG_domid, domid)
        return rt.hc.memory_op(M.XENMEM_current_reservation, arg)
    finally:
        rt.args.free(arg)


def sched_shutdown(rt, reason):
    arg = rt.args.alloc(S.SHUTDOWN_SIZE)
    try:
        rt.hal.w32(arg + S.SHUTDOWN_reason, reason)
        return rt.hc.sched_op(S.SCHEDOP_shutdown, arg)
    finally:
        rt.args.free(arg)


# 1. CPUID discovery ---------------------------------------------------------------------------


def test_cpuid_xen_leaves():
    got = {}

    def main(rt):
        got["base"] = rt.cpuid_base
        for i in range(5):
            got[i] = rt.arch.cpuid(rt.cpuid_base + i)

    m, result = run(main)
    assert result.status == 0
    base = got["base"]
    assert base == 0x40000000
    eax, ebx, ecx, edx = got[0]
    assert b"".join(r.to_bytes(4, "little") for r in (ebx, ecx, edx)) == b"XenVMMXenVMM"
    assert eax >= base + 2
    assert got[1][0] == 0x40013  # Xen 4.19
    assert got[1][0] == (X.XEN_VERSION_MAJOR << 16) | X.XEN_VERSION_MINOR
    assert got[2][0] == 1  # one hypercall page
    assert got[2][1] == 0x40000000  # its MSR
    assert got[4][0] & (1 << 6)  # XEN_HVM_CPUID_UPCALL_VECTOR
    assert got[4][0] & C.XEN_HVM_CPUID_VCPU_ID_PRESENT
    assert got[4][1] == 0  # vCPU id
    assert got[4][0] & C.XEN_HVM_CPUID_DOMID_PRESENT
    assert got[4][2] == m.domid


def test_cpuid_leaves_past_xen_are_zero_on_the_default_board():
    got = []

    def main(rt):
        for leaf in list(range(0x40000100, 0x40000106)) + [0x40000200, 0x4000FF00]:
            got.append(rt.arch.cpuid(leaf))

    _, result = run(main)
    assert result.status == 0
    assert got == [(0, 0, 0, 0)] * 8


def test_cpuid_base_search_steps_by_0x100():
    board = dataclasses.replace(BOARD, cpuid_base=0x40000100)
    got = {}

    def main(rt):
        got["base"] = rt.cpuid_base
        got["first"] = rt.arch.cpuid(0x40000000)
        got["found"] = rhv.find_cpuid_base(rt.arch)
        got["sig"] = rt.arch.cpuid(0x40000100)
        got["version"] = rt.xen_version

    _, result = run(main, board=board)
    assert result.status == 0  # the whole boot, hypercalls included, worked
    assert got["base"] == 0x40000100
    assert got["found"] == 0x40000100
    assert got["first"] == (0, 0, 0, 0)
    assert got["sig"][1:] == (C.XEN_CPUID_SIGNATURE_EBX, C.XEN_CPUID_SIGNATURE_ECX,
                              C.XEN_CPUID_SIGNATURE_EDX)  # fmt: skip
    assert got["sig"][0] >= 0x40000102
    assert got["version"] == (4, 19)


# 2. The hypercall page -------------------------------------------------------------------------


def test_hypercall_page_contents():
    got = {}

    def main(rt):
        got["page"] = rt.arch.hypercall_page
        got["msr"] = rt.hypercall_msr

    m, result = run(main)
    assert result.status == 0
    assert got["page"] == PAGE
    assert got["msr"] == 0x40000000
    assert m.hypervisor.hypercall_page == PAGE
    data = m.ram.read(PAGE, 4096)
    for n in range(128):
        slot = data[n * 32 : n * 32 + 32]
        if n == 23:  # HYPERVISOR_iret: ud2 for HVM guests
            head = b"\x0f\x0b"
        else:  # mov eax, n; vmcall; ret
            head = b"\xb8" + n.to_bytes(4, "little") + b"\x0f\x01\xc1\xc3"
        assert slot[: len(head)] == head, n
        assert slot[len(head) :] == b"\xcc" * (32 - len(head)), n


def test_hypercall_page_slot_17_disassembles():
    m, result = run(lambda rt: None)
    assert result.status == 0
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    code = m.ram.read(PAGE + 17 * 32, 9)
    insns = [(i.address, i.mnemonic, i.op_str) for i in md.disasm(code, PAGE + 17 * 32)]
    assert insns == [
        (PAGE + 17 * 32, "mov", "eax, 0x11"),
        (PAGE + 17 * 32 + 5, "vmcall", ""),
        (PAGE + 17 * 32 + 8, "ret", ""),
    ]


def test_hypercall_page_uses_vmmcall_on_amd():
    board = dataclasses.replace(BOARD, cpu_vendor="amd")
    got = []

    def main(rt):
        got.append(rt.hc.xen_version(V.XENVER_version))

    m, result = run(main, board=board)
    assert result.status == 0
    assert got == [0x40013]  # a vmmcall traps like a vmcall
    assert m.ram.read(PAGE + 17 * 32, 9) == b"\xb8\x11\x00\x00\x00\x0f\x01\xd9\xc3"


def test_hypercall_msr_misaligned_is_gp():
    after = []

    def main(rt):
        rt.arch.wrmsr(0x40000000, PAGE | 1)
        after.append("still running")

    _, result = run(main)
    assert result.status == 3
    assert result.outcome.kind == "fault"
    assert "#GP" in result.outcome.message
    assert after == []


def test_hypercall_msr_outside_ram_is_gp():
    after = []

    def main(rt):
        rt.arch.wrmsr(0x40000000, RAM_SIZE)
        after.append("still running")

    _, result = run(main)
    assert result.status == 3
    assert "#GP" in result.outcome.message
    assert after == []


def test_hypercall_page_can_move():
    got = []

    def main(rt):
        rt.arch.wrmsr(0x40000000, DATA)
        rt.arch.hypercall_page = DATA
        got.append(rt.hc.xen_version(V.XENVER_version))

    m, result = run(main)
    assert result.status == 0
    assert got == [0x40013]
    assert m.hypervisor.hypercall_page == DATA
    assert m.ram.read(DATA + 18 * 32, 9) == b"\xb8\x12\x00\x00\x00\x0f\x01\xc1\xc3"


# 3. Arguments and results -----------------------------------------------------------------------


def _recorder(m, seen):
    def h60(xen, vcpu, a, b, c, d, e):
        seen.append((a, b, c, d, e))
        return 0x1234

    def h61(xen, vcpu, a):
        return -a  # a negative long

    def h62(xen, vcpu, a):
        raise XenError(a)

    m.hypervisor.table[60] = (h60, 5)
    m.hypervisor.table[61] = (h61, 1)
    m.hypervisor.table[62] = (h62, 1)


def _args_guest(out):
    def main(rt):
        out.append(rt.hc.raw(60, 1, 2, 3, 4, 5))
        out.append(rt.hc.raw(60, U64, 1 << 63, 0xDEADBEEF5A5A0001, 0, 7))
        out.append(rt.hc.raw(61, 22))
        out.append(rt.hc.raw(61, 1))
        out.append(rt.hc.raw(61, -(1 << 63)))  # 1 << 63 comes back as the most negative long
        out.append(rt.hc.raw(62, X.EBUSY))

    return main


def _check_args(result, out, seen):
    assert result.status == 0
    assert out == [0x1234, 0x1234, -22, -1, -(1 << 63), -16]
    assert seen == [(1, 2, 3, 4, 5), (U64, 1 << 63, 0xDEADBEEF5A5A0001, 0, 7)]


def test_hypercall_args_and_result_through_the_page():
    seen, out = [], []
    _, result = run(_args_guest(out), setup=lambda m: _recorder(m, seen))
    _check_args(result, out, seen)


def test_hypercall_args_and_result_through_bare_vmcall():
    seen, out, pages = [], [], []

    def main(rt):
        pages.append(rt.arch.hypercall_page)
        rt.arch.hypercall_page = None
        try:
            _args_guest(out)(rt)
        finally:
            rt.arch.hypercall_page = pages[0]

    m, result = run(main, setup=lambda m: _recorder(m, seen))
    _check_args(result, out, seen)
    # None of those calls went through the page: slot 60's mov is never what set rax.
    assert pages == [PAGE]


def test_hypercall_register_convention_in_machine_code():
    seen, out = [], []

    def main(rt):
        code = bytearray()
        code += b"\x48\xc7\xc7" + u32(11)  # mov rdi, 11
        code += b"\x48\xc7\xc6" + u32(12)  # mov rsi, 12
        code += b"\x48\xc7\xc2" + u32(13)  # mov rdx, 13
        code += b"\x49\xc7\xc2" + u32(14)  # mov r10, 14
        code += b"\x49\xc7\xc0" + u32(15)  # mov r8, 15
        code += b"\x49\xc7\xc1" + u32(99)  # mov r9, 99 (not an argument)
        code += b"\x48\xc7\xc1" + u32(98)  # mov rcx, 98 (not an argument)
        code += b"\xb8" + u32(60)  # mov eax, 60
        code += b"\x0f\x01\xc1"  # vmcall
        code += b"\xc3"  # ret
        out.append(rt.arch.call(emit(rt, code)))
        # The same with only rax loaded by hand: vmcall; ret.
        stub = emit(rt, b"\x0f\x01\xc1\xc3")
        regs = [("r11", stub), ("rax", 61), ("rdi", 5)]
        out.append(rt.hal.run(rt.arch.trampoline, regs, "rax"))

    _, result = run(main, setup=lambda m: _recorder(m, seen))
    assert result.status == 0
    assert seen == [(11, 12, 13, 14, 15)]
    assert out == [0x1234, (-5) & U64]  # the raw rax is the 64-bit two's complement


# 4. Unknown hypercalls and sub-ops --------------------------------------------------------------


def test_unknown_hypercall_numbers_are_enosys():
    out = {}
    unknown = []

    def setup(m):
        # Whatever the stub implements today, everything else below 64 must be -ENOSYS.
        unknown.extend(n for n in range(64) if n not in m.hypervisor.table and n != 23)

    def main(rt):
        for nr in unknown + [64, 100, 127, 128, 200, 4096, 1 << 32, 1 << 40, 1 << 63, U64]:
            out[nr] = rt.hc.raw(nr, 1, 2, 3, 4, 5)
        # 23 (iret) is ud2 in the page; a bare vmcall reaches the dispatcher.
        rt.arch.hypercall_page, page = None, rt.arch.hypercall_page
        out[23] = rt.hc.raw(23)
        rt.arch.hypercall_page = page

    m, result = run(main, setup=setup)
    assert result.status == 0
    assert 0 in unknown and 11 in unknown and 63 in unknown
    assert out == {nr: -X.ENOSYS for nr in out}
    assert len(out) == len(unknown) + 11
    assert m.hypervisor.counts[1 << 40] == 1


def test_hypercall_page_iret_slot_is_ud2():
    after = []

    def main(rt):
        rt.hc.raw(X.HYPERVISOR_iret)
        after.append("still running")

    _, result = run(main)
    assert result.status == 3
    assert "#UD" in result.outcome.message
    assert after == []


def test_unknown_subops_are_enosys():
    out = {}

    def main(rt):
        buf = DATA
        out["xen_version 99"] = rt.hc.xen_version(99, buf)
        out["memory_op 63"] = rt.hc.memory_op(63, buf)
        out["sched_op 99"] = rt.hc.sched_op(99, buf)
        out["console_io 7"] = rt.hc.console_io(7, 4, buf)

    _, result = run(main)
    assert result.status == 0
    assert out == {k: -X.ENOSYS for k in out} and len(out) == 4


# 5. Bad pointers and bad values ------------------------------------------------------------------


def test_console_io_write_bad_buffer_is_efault():
    out = []

    def main(rt):
        rt.hal.write(RAM_SIZE - 4, b"tail")
        out.append(rt.hc.console_io(0, 4, FAR))
        out.append(rt.hc.console_io(0, 8, RAM_SIZE - 4))  # straddles the end of RAM
        out.append(rt.hc.console_io(0, 4, RAM_SIZE - 4))  # exactly the last 4 bytes: fine

    m, result = run(main)
    assert result.status == 0
    assert out == [-X.EFAULT, -X.EFAULT, 0]
    assert m.console_text() == "tail"


def test_xenver_get_features_bad_pointer_is_efault():
    out = []

    def main(rt):
        out.append(rt.hc.xen_version(V.XENVER_get_features, FAR))
        out.append(rt.hc.xen_version(V.XENVER_get_features, RAM_SIZE - 4))
        out.append(rt.hc.xen_version(V.XENVER_extraversion, RAM_SIZE - 8))

    _, result = run(main)
    assert result.status == 0
    assert out == [-X.EFAULT] * 3


def test_add_to_physmap_bad_pointer_is_efault():
    out = []

    def main(rt):
        out.append(rt.hc.memory_op(M.XENMEM_add_to_physmap, FAR))
        out.append(rt.hc.memory_op(M.XENMEM_add_to_physmap, RAM_SIZE - 16))

    _, result = run(main)
    assert result.status == 0
    assert out == [-X.EFAULT, -X.EFAULT]


def test_add_to_physmap_shared_info_bad_values_are_einval():
    out = []

    def main(rt):
        out.append(add_to_physmap(rt, idx=1))
        out.append(add_to_physmap(rt, gpfn=RAM_SIZE >> 12))
        out.append(add_to_physmap(rt, gpfn=1 << 52))
        out.append(add_to_physmap(rt, space=99))  # no such space

    m, result = run(main)
    assert result.status == 0
    assert out == [-X.EINVAL] * 4
    assert m.hypervisor.shared_info.gfn == LAYOUT["shared_info_gfn"]  # nothing moved


def test_sched_shutdown_bad_reason_is_einval():
    out = []

    def main(rt):
        out.append(sched_shutdown(rt, 9))
        out.append(rt.hc.sched_op(S.SCHEDOP_shutdown, FAR))

    m, result = run(main)
    assert result.status == 0  # the domain is still running after both
    assert out == [-X.EINVAL, -X.EFAULT]


def test_add_to_physmap_foreign_domid():
    out = {}

    def main(rt):
        own = rt.arch.cpuid(rt.cpuid_base + C.XEN_CPUID_LEAF_HVM)[2]
        out["own"] = own
        # Its own domid names the caller, like DOMID_SELF (rcu_lock_domain_by_any_id).
        out["self"] = add_to_physmap(rt, domid=own, gpfn=LAYOUT["shared_info_gfn"])
        # dom0 exists but is not the caller's to change (xsm XSM_TARGET: -EPERM).
        out["dom0"] = add_to_physmap(rt, domid=0)
        # No such domain: -ESRCH, for ordinary ids and for the special ones alike.
        out["dom7"] = add_to_physmap(rt, domid=7)
        out["io"] = add_to_physmap(rt, domid=X.DOMID_IO)
        out["invalid"] = add_to_physmap(rt, domid=X.DOMID_INVALID)
        out["reservation dom0"] = current_reservation(rt, domid=0)
        out["reservation io"] = current_reservation(rt, domid=X.DOMID_IO)

    m, result = run(main)
    assert result.status == 0
    assert out == {
        "own": m.domid,
        "self": 0,
        "dom0": -X.EPERM,
        "dom7": -X.ESRCH,
        "io": -X.ESRCH,
        "invalid": -X.ESRCH,
        "reservation dom0": -X.EPERM,
        "reservation io": -X.ESRCH,
    }
    assert m.hypervisor.shared_info.gfn == LAYOUT["shared_info_gfn"]


# 6. CPL 3 ---------------------------------------------------------------------------------------

USER_CODE = 0x210000
USER_STACK = 0x220000
USER_OUT = 0x230000


def test_hypercall_from_cpl3_is_eperm():
    before = {}

    def main(rt):
        before["count"] = rt.hal.machine.hypervisor.counts.get(17, 0)
        rt.hal.w64(USER_OUT, 0x5555)
        user = bytearray()
        user += b"\xb8" + u32(17)  # mov eax, 17 (xen_version)
        user += b"\x31\xff"  # xor edi, edi (XENVER_version)
        user += b"\x0f\x01\xc1"  # vmcall
        user += b"\x48\xa3" + u64(USER_OUT)  # mov [USER_OUT], rax (moffs64)
        user += b"\xf4"  # hlt: #GP at CPL 3, which ends the run
        rt.hal.load_code(USER_CODE, bytes(user))
        enter = bytearray()
        enter += b"\x6a\x23"  # push 0x23 (SS: user data, RPL 3)
        enter += b"\x68" + u32(USER_STACK)  # push USER_STACK (RSP)
        enter += b"\x6a\x02"  # push 0x2 (RFLAGS: IF=0)
        enter += b"\x6a\x1b"  # push 0x1b (CS: user code, RPL 3)
        enter += b"\x68" + u32(USER_CODE)  # push USER_CODE (RIP)
        enter += b"\x48\xcf"  # iretq
        rt.arch.call(emit(rt, enter))
        before["returned"] = True

    m, result = run(main)
    assert result.status == 3
    assert result.outcome.kind == "fault"
    assert "#GP" in result.outcome.message
    assert "returned" not in before
    assert m.ram.u64(USER_OUT) == (-X.EPERM) & U64
    assert m.hypervisor.counts.get(17, 0) == before["count"]
    assert before["count"] > 0  # the boot itself made xen_version calls at CPL 0


# 7. memory_op: shared_info moves, physmap removal, reservation, memory map -----------------------


def test_shared_info_move_keeps_contents():
    got = {}
    new_gfn = 0x300
    old_gfn = LAYOUT["shared_info_gfn"]
    pattern = [(0x0123456789ABCDEF * (w + 1)) & U64 for w in range(64)]

    def main(rt):
        si = rt.shared_info
        lay = rt.layout
        for w in range(64):
            rt.hal.w64(si.mask_word(w), pattern[w])
        got["wc_before"] = [rt.hal.r32(si.gpa + o) for o in
                            (lay.wc_version, lay.wc_sec, lay.wc_nsec, lay.wc_sec_hi)]  # fmt: skip
        moved = map_shared_info(rt, new_gfn)
        rt.shared_info = moved
        got["masks"] = [rt.hal.r64(moved.mask_word(w)) for w in range(64)]
        got["wc_after"] = [rt.hal.r32(moved.gpa + o) for o in
                           (lay.wc_version, lay.wc_sec, lay.wc_nsec, lay.wc_sec_hi)]  # fmt: skip
        got["time_version"] = rt.hal.r32(moved.time(0))
        got["clock"] = rt.clock_monotonic()
        got["host_gfn"] = rt.hal.machine.hypervisor.shared_info.gfn
        rt.hal.r32(old_gfn << 12)  # a hole now: this read ends the run
        got["read old"] = True

    m, result = run(main)
    assert got["masks"] == pattern
    assert got["host_gfn"] == new_gfn
    assert m.hypervisor.shared_info.gfn == new_gfn
    assert got["wc_after"] == got["wc_before"]
    wc_version, wc_sec, wc_nsec, wc_sec_hi = got["wc_after"]
    assert wc_version % 2 == 0 and wc_version > 0
    assert ((wc_sec_hi << 32) | wc_sec) * 10**9 + wc_nsec == 1_767_225_600 * 10**9
    assert got["time_version"] % 2 == 0 and got["time_version"] > 0
    assert got["clock"] > 0
    assert old_gfn in m.ram.holes
    assert "read old" not in got
    assert result.status == 3
    assert result.outcome.kind == "fault"
    assert "hole" in result.outcome.message


def test_remove_from_physmap_and_current_reservation():
    got = {}
    gfn = 0x400

    def main(rt):
        rt.hal.w64(gfn << 12, 0xABCD)
        got["before"] = current_reservation(rt)
        got["remove"] = remove_from_physmap(rt, gfn)
        got["after"] = current_reservation(rt)
        got["again"] = remove_from_physmap(rt, gfn)  # nothing there any more
        got["beyond"] = remove_from_physmap(rt, RAM_SIZE >> 12)
        got["foreign"] = remove_from_physmap(rt, gfn + 1, domid=X.DOMID_IO)
        got["bad ptr"] = rt.hc.memory_op(M.XENMEM_remove_from_physmap, FAR)
        got["reservation bad ptr"] = rt.hc.memory_op(M.XENMEM_current_reservation, FAR)
        rt.hal.r64(gfn << 12)  # the hole: this read ends the run
        got["read hole"] = True

    m, result = run(main)
    # Mapping shared_info at boot freed the RAM page that was at its frame, as in Xen.
    assert got["before"] == (RAM_SIZE >> 12) - 1
    assert got["remove"] == 0
    assert got["after"] == got["before"] - 1
    assert got["again"] == -X.ENOENT
    assert got["beyond"] == -X.ENOENT
    assert got["foreign"] == -X.ESRCH
    assert got["bad ptr"] == -X.EFAULT
    assert got["reservation bad ptr"] == -X.EFAULT
    assert gfn in m.ram.holes
    assert "read hole" not in got
    assert result.status == 3
    assert "hole" in result.outcome.message


def test_memory_map():
    got = {}
    e820 = list(BOARD.memory_map)
    assert len(e820) == 3

    def main(rt):
        arg, buf = DATA, DATA + 0x100
        for cap in (0, 2, 3, 8):
            rt.hal.write(buf, b"\xee" * (8 * M.E820_ENTRY_SIZE))
            rt.hal.write(arg, bytes(M.MEMORY_MAP_SIZE))
            rt.hal.w32(arg + M.MEMORY_MAP_nr_entries, cap)
            rt.hal.w64(arg + M.MEMORY_MAP_buffer, buf)
            rc = rt.hc.memory_op(M.XENMEM_memory_map, arg)
            got[cap] = (rc, rt.hal.r32(arg + M.MEMORY_MAP_nr_entries),
                        rt.hal.read(buf, 8 * M.E820_ENTRY_SIZE))  # fmt: skip
        rt.hal.w32(arg + M.MEMORY_MAP_nr_entries, 3)
        rt.hal.w64(arg + M.MEMORY_MAP_buffer, FAR)
        got["bad buffer"] = rt.hc.memory_op(M.XENMEM_memory_map, arg)
        got["bad arg"] = rt.hc.memory_op(M.XENMEM_memory_map, FAR)

    _, result = run(main)
    assert result.status == 0
    for cap in (0, 2, 3, 8):
        rc, n, raw = got[cap]
        want = min(cap, len(e820))
        assert rc == 0
        assert n == want
        entries = []
        for i in range(want):
            e = raw[i * 20 : i * 20 + 20]
            entries.append((int.from_bytes(e[0:8], "little"), int.from_bytes(e[8:16], "little"),
                            int.from_bytes(e[16:20], "little")))  # fmt: skip
        assert entries == e820[:want]
        assert raw[want * 20 :] == b"\xee" * ((8 - want) * 20)  # nothing past the count
    assert got["bad buffer"] == -X.EFAULT
    assert got["bad arg"] == -X.EFAULT


# 9. xen_version ---------------------------------------------------------------------------------


def test_xen_version_commands():
    got = {}

    def main(rt):
        got["version"] = rt.hc.xen_version(V.XENVER_version)
        got["boot version"] = rt.xen_version
        got["extraversion"] = rt.extraversion()
        got["features 0"] = rhv.features(rt, 0)
        got["boot features"] = rt.features
        got["features 1"] = rhv.features(rt, 1)
        got["features 7"] = rhv.features(rt, 7)
        got["pagesize"] = rt.hc.xen_version(V.XENVER_pagesize)
        rt.hal.write(DATA, b"\xff" * 16)
        got["extraversion raw rc"] = rt.hc.xen_version(V.XENVER_extraversion, DATA)
        got["extraversion raw"] = rt.hal.read(DATA, 16)

    _, result = run(main)
    assert result.status == 0
    assert got == {
        "version": 0x40013,
        "boot version": (4, 19),
        "extraversion": "-micropv",
        "features 0": 0x001D2305,
        "boot features": 0x001D2305,
        "features 1": 0,
        "features 7": 0,
        "pagesize": 4096,
        "extraversion raw rc": 0,
        "extraversion raw": b"-micropv" + b"\0" * 8,
    }
    f = got["features 0"]
    for bit in (0, 2, 8, 9, 13, 16, 18, 19, 20):
        assert f & (1 << bit)
    assert not f & (1 << V.XENFEAT_hvm_pirqs)
