# A per-vCPU local APIC in xAPIC mode, as Xen's vlapic presents it to an HVM/PVH guest
# (xen/arch/x86/hvm/vlapic.c; register names as Xen and Linux's apicdef.h spell them).
# IRR/ISR/TMR are 256-bit ints. It is an interrupt source for X86VCPU: pending() is Xen's
# vlapic_has_pending_irq plus the TPR check of hvm_interrupt_blocked, acknowledge() is
# vlapic_ack_pending_irq. No timer: the timer registers keep what the guest writes, and a guest
# that unmasks LVTT and writes TMICT never gets an interrupt. No x2APIC: MSR_APIC_BASE.EXTD #GPs.

MSR_IA32_APICBASE = 0x1B
APIC_BASE_BSP = 1 << 8
APIC_BASE_EXTD = 1 << 10  # x2APIC mode: not offered (CPUID.1:ECX.x2APIC is clear on QEMU's CPU)
APIC_BASE_ENABLE = 1 << 11
APIC_BASE_ADDR_MASK = 0x000FFFFFFFFFF000
APIC_DEFAULT_PHYS_BASE = 0xFEE00000

APIC_ID = 0x20
APIC_LVR = 0x30
APIC_TASKPRI = 0x80
APIC_ARBPRI = 0x90
APIC_PROCPRI = 0xA0
APIC_EOI = 0xB0
APIC_LDR = 0xD0
APIC_DFR = 0xE0
APIC_SPIV = 0xF0
APIC_ISR = 0x100
APIC_TMR = 0x180
APIC_IRR = 0x200
APIC_ESR = 0x280
APIC_ICR = 0x300
APIC_ICR2 = 0x310
APIC_LVTT = 0x320
APIC_LVTTHMR = 0x330
APIC_LVTPC = 0x340
APIC_LVT0 = 0x350
APIC_LVT1 = 0x360
APIC_LVTERR = 0x370
APIC_TMICT = 0x380
APIC_TMCCT = 0x390
APIC_TDCR = 0x3E0

VLAPIC_VERSION = 0x00050014  # version 0x14, max LVT entry 5
APIC_SPIV_APIC_ENABLED = 1 << 8
APIC_LVT_MASKED = 1 << 16
APIC_ESR_SENDILL = 0x20
APIC_ESR_RECVILL = 0x40
APIC_DM_FIXED, APIC_DM_LOWEST = 0x000, 0x100
APIC_DEST_LOGICAL = 1 << 11
APIC_SEND_PENDING = 1 << 12  # ICR delivery status
APIC_DEST_NOSHORT, APIC_DEST_SELF, APIC_DEST_ALLINC, APIC_DEST_ALLBUT = 0, 1, 2, 3  # ICR 19:18
APIC_TIMER_MODE_MASK = 3 << 17
APIC_TIMER_MODE_TSC_DEADLINE = 2 << 17

# Writable bits of each LVT, LVTT first (vlapic_lvt_mask): vector, delivery status, mask, plus
# the timer mode, delivery mode, or the LINT polarity/remote-IRR/trigger bits.
_LVT_MASK = APIC_LVT_MASKED | APIC_SEND_PENDING | 0xFF
_LINT_MASK = _LVT_MASK | 0x700 | 0xE000
_LVT_WRITABLE = {
    APIC_LVTT: _LVT_MASK | APIC_TIMER_MODE_MASK,
    APIC_LVTTHMR: _LVT_MASK | 0x700,
    APIC_LVTPC: _LVT_MASK | 0x700,
    APIC_LVT0: _LINT_MASK,
    APIC_LVT1: _LINT_MASK,
    APIC_LVTERR: _LVT_MASK,
}


def _highest(bits):
    """Highest set vector of a 256-bit map, or -1 (vlapic_find_highest_vector)."""
    return bits.bit_length() - 1


class VLAPIC:
    def __init__(self, vcpu_id, base=APIC_DEFAULT_PHYS_BASE, bsp=True, on_eoi=None):
        self.vcpu_id = vcpu_id
        # Xen numbers APIC IDs vcpu_id * 2 (vlapic_reset; hvmloader's MADT agrees).
        self.apic_id = vcpu_id * 2
        self.base = base
        self.bsp = bsp
        self.on_eoi = on_eoi  # fn(vector | None), called from inside the MMIO store
        # fn(), called on every SVR write that sets the enable bit: where Xen re-asserts a
        # pending per-vCPU upcall vector (Jan Beulich, xen-devel 2022-11-18, "x86/HVM: don't
        # mark evtchn upcall vector as pending when vLAPIC is disabled").
        self.on_enable = None
        # (ICR low, ICR high) of IPIs that may reach another vCPU, or whose delivery mode
        # (NMI, INIT, SIPI, ...) this model does not apply itself: for the SMP router.
        self.sent_ipis = []
        self.regs = {APIC_ESR: 0}  # ESR survives INIT/reset in Xen: cleared only here
        self.reset()

    # Reset, the enable bits, MSR_APIC_BASE ---------------------------------------------------
    def reset(self):
        """Power-on state (vlapic_reset): enabled in MSR_APIC_BASE, software-disabled in SVR."""
        self.base_msr = self.base | APIC_BASE_ENABLE | (APIC_BASE_BSP if self.bsp else 0)
        self.regs[APIC_ID] = self.apic_id << 24
        self._do_init()

    def _do_init(self):
        # vlapic_do_init: what INIT and a 0->1 change of MSR_APIC_BASE.ENABLE reset.
        self.irr = self.isr = self.tmr = 0
        r = self.regs
        r[APIC_ICR] = r[APIC_ICR2] = r[APIC_LDR] = r[APIC_TASKPRI] = 0
        r[APIC_TMICT] = r[APIC_TDCR] = 0
        r[APIC_DFR] = 0xFFFFFFFF
        for lvt in _LVT_WRITABLE:
            r[lvt] = APIC_LVT_MASKED
        r[APIC_SPIV] = 0xFF

    @property
    def hw_enabled(self):
        return bool(self.base_msr & APIC_BASE_ENABLE)

    @property
    def sw_enabled(self):
        return bool(self.regs[APIC_SPIV] & APIC_SPIV_APIC_ENABLED)

    @property
    def enabled(self):
        return self.hw_enabled and self.sw_enabled

    def read_base_msr(self):
        return self.base_msr

    def write_base_msr(self, value):
        """guest_wrmsr_apic_base. False means #GP: a reserved bit (EXTD included: no x2APIC
        here), or moving the MMIO window while the value enables xAPIC mode. The value is then
        stored as written, BSP bit included, as Xen stores it."""
        if value & ~(APIC_BASE_ADDR_MASK | APIC_BASE_ENABLE | APIC_BASE_BSP):
            return False
        if value & APIC_BASE_ENABLE and value & APIC_BASE_ADDR_MASK != self.base:
            return False
        if (self.base_msr ^ value) & APIC_BASE_ENABLE and value & APIC_BASE_ENABLE:
            # Re-enabling resets the whole APIC, SVR included: the guest must software-enable
            # it again. Disabling keeps every register but hides the MMIO page.
            self.reset()
        self.base_msr = value
        return True

    # Interrupt source interface (X86VCPU.irq_sources) -----------------------------------------
    def set_irq(self, vector, trig=False):
        """vlapic_set_irq: latch vector in IRR whether or not the APIC is enabled (the
        callers check that when they must); vectors 0-15 are an illegal-vector error."""
        if vector < 16:
            self._error(APIC_ESR_RECVILL)
            return
        bit = 1 << vector
        self.tmr = self.tmr | bit if trig else self.tmr & ~bit
        self.irr |= bit

    def ppr(self):
        """vlapic_get_ppr: TPR if its class is at least the highest in-service class."""
        tpr = self.regs[APIC_TASKPRI]
        isrv = max(_highest(self.isr), 0)
        return tpr & 0xFF if (tpr & 0xF0) >= (isrv & 0xF0) else isrv & 0xF0

    def pending(self):
        """The vector the CPU would take next, or None. Xen's vlapic_has_pending_irq blocks a
        vector whose class is not above the highest in-service class; hvm_interrupt_blocked
        then blocks it if its class is not above the TPR's. Together: above the PPR's class."""
        if not self.irr or not self.enabled:
            return None
        vector = _highest(self.irr)
        if vector >> 4 <= self.ppr() >> 4:
            return None
        return vector

    def acknowledge(self, vector):
        """vlapic_ack_pending_irq: the interrupt acknowledge moves vector from IRR to ISR."""
        self.isr |= 1 << vector
        self.irr &= ~(1 << vector)

    def eoi(self):
        """vlapic_EOI_set: retire the highest-priority in-service vector, if any."""
        vector = _highest(self.isr)
        if vector < 0:
            vector = None  # an EOI with nothing in service is legal and does nothing
        else:
            self.isr &= ~(1 << vector)
        if self.on_eoi is not None:
            self.on_eoi(vector)

    def _error(self, mask):
        # vlapic_error: latch the ESR bit; the first time, raise the LVT error vector too.
        esr = self.regs[APIC_ESR]
        if esr & mask != mask:
            self.regs[APIC_ESR] = esr | mask
            lvterr = self.regs[APIC_LVTERR]
            if not lvterr & APIC_LVT_MASKED:
                self.set_irq(lvterr & 0xFF)

    # The 4 KiB MMIO page -------------------------------------------------------------------
    # Registers are 32 bits wide at 16-byte strides. As vlapic_mmio_read/write, any access that
    # fits inside one register's 32 bits works (1 and 2 bytes read the bytes, write by
    # read-modify-write); anything else reads 0 and is dropped. Unicorn cannot show us the
    # guest's real access: it splits an 8-byte access into two 4-byte ones at +0 and +4 (the
    # low half reaches the register; Xen drops the whole access), turns a misaligned 4-byte
    # load into the two aligned loads around it, and a misaligned store into single bytes.
    # While MSR_APIC_BASE.ENABLE is clear the page is not the APIC's (vlapic_range): the access
    # falls through to Xen's null handler, reads all ones and drops writes.
    def mmio_read(self, offset, size):
        if not self.hw_enabled:
            return (1 << 8 * size) - 1
        align = offset & 0xF
        if align + size > 4 or offset > APIC_TDCR + 3:
            return 0
        return (self._read_reg(offset & ~0xF) >> 8 * align) & ((1 << 8 * size) - 1)

    def mmio_write(self, offset, size, value):
        if not self.hw_enabled:
            return
        align = offset & 0xF
        reg = offset & ~0xF
        if align + size > 4 or reg > APIC_TDCR:
            return
        if size < 4:
            mask = ((1 << 8 * size) - 1) << 8 * align
            value = self._read_reg(reg) & ~mask | (value << 8 * align) & mask
        self._write_reg(reg, value & 0xFFFFFFFF)

    def _read_reg(self, reg):
        # vlapic_read_aligned
        if reg == APIC_PROCPRI:
            return self.ppr()
        if APIC_ISR <= reg < APIC_IRR + 0x80:
            bits = (self.isr, self.tmr, self.irr)[(reg - APIC_ISR) >> 7]
            return (bits >> 32 * ((reg >> 4) & 7)) & 0xFFFFFFFF
        if reg == APIC_LVR:
            return VLAPIC_VERSION
        if reg == APIC_TMCCT:
            return 0  # no timer runs, so the count is always 0
        if reg == APIC_TMICT and self._tsc_deadline():
            return 0
        return self.regs.get(reg, 0)

    def _tsc_deadline(self):
        return self.regs[APIC_LVTT] & APIC_TIMER_MODE_MASK == APIC_TIMER_MODE_TSC_DEADLINE

    def _write_reg(self, reg, val):
        # vlapic_reg_write; registers it does not name (LVR, PPR, ISR/TMR/IRR, ESR, TMCCT...)
        # ignore writes. ESR too: Xen never clears it on a write.
        r = self.regs
        if reg == APIC_ID:
            r[APIC_ID] = val
        elif reg == APIC_TASKPRI:
            r[APIC_TASKPRI] = val & 0xFF
        elif reg == APIC_EOI:
            self.eoi()
        elif reg == APIC_LDR:
            r[APIC_LDR] = val & 0xFF000000
        elif reg == APIC_DFR:
            r[APIC_DFR] = val | 0x0FFFFFFF
        elif reg == APIC_SPIV:
            r[APIC_SPIV] = val & 0x3FF
            if not val & APIC_SPIV_APIC_ENABLED:
                for lvt in _LVT_WRITABLE:  # software disable masks every LVT
                    r[lvt] |= APIC_LVT_MASKED
            elif self.on_enable is not None:
                self.on_enable()
        elif reg == APIC_ICR:
            val &= ~APIC_SEND_PENDING  # delivery is instant: the status always reads idle
            self._ipi(val, r[APIC_ICR2])
            r[APIC_ICR] = val
        elif reg == APIC_ICR2:
            r[APIC_ICR2] = val & 0xFF000000
        elif reg in _LVT_WRITABLE:
            if reg == APIC_LVTT and self._tsc_deadline() != (
                val & APIC_TIMER_MODE_MASK == APIC_TIMER_MODE_TSC_DEADLINE
            ):
                r[APIC_TMICT] = 0  # switching into or out of TSC-deadline mode
            if not self.sw_enabled:
                val |= APIC_LVT_MASKED
            r[reg] = val & _LVT_WRITABLE[reg]
        elif reg == APIC_TMICT:
            if not self._tsc_deadline():
                r[APIC_TMICT] = val
        elif reg == APIC_TDCR:
            r[APIC_TDCR] = val & 0xB

    # Inter-processor interrupts ---------------------------------------------------------------
    def _ipi(self, icr, icr2):
        """vlapic_ipi for this APIC. A fixed (or lowest-priority, when only this APIC can
        match) interrupt that matches us is accepted here, if we are enabled, as
        vlapic_accept_irq does; everything that can reach another APIC, or has a delivery
        mode we do not apply (NMI, SMI, INIT, SIPI), goes to sent_ipis."""
        mode = icr & 0x700
        vector = icr & 0xFF
        if mode in (APIC_DM_FIXED, APIC_DM_LOWEST) and vector < 16:
            self._error(APIC_ESR_SENDILL)
            return
        shorthand = (icr >> 18) & 3
        dest = icr2 >> 24
        logical = bool(icr & APIC_DEST_LOGICAL)
        to_self = self._matches(shorthand, dest, logical)
        to_others = shorthand in (APIC_DEST_ALLINC, APIC_DEST_ALLBUT) or (
            shorthand == APIC_DEST_NOSHORT and (logical or dest != self.regs[APIC_ID] >> 24)
        )
        if to_others or mode not in (APIC_DM_FIXED, APIC_DM_LOWEST):
            self.sent_ipis.append((icr, icr2))
        # Lowest priority picks one target among all that match: the router's job, unless
        # this APIC is the only candidate.
        accept = mode == APIC_DM_FIXED or (mode == APIC_DM_LOWEST and not to_others)
        if to_self and accept and self.enabled:
            self.set_irq(vector)

    def _matches(self, shorthand, dest, logical):
        # vlapic_match_dest with target == source, xAPIC mode
        if shorthand == APIC_DEST_SELF or shorthand == APIC_DEST_ALLINC:
            return True
        if shorthand == APIC_DEST_ALLBUT:
            return False
        if not logical:
            return dest == 0xFF or dest == self.regs[APIC_ID] >> 24
        lid = self.regs[APIC_LDR] >> 24
        dfr = self.regs[APIC_DFR]
        if dfr == 0xFFFFFFFF:  # flat
            return bool(lid & dest)
        if dfr == 0x0FFFFFFF:  # cluster
            return lid >> 4 == dest >> 4 and bool(lid & dest & 0xF)
        return False
