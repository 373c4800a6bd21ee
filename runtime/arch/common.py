# The CPU operations every arch layer offers the runtime, each one stub the arch wrote into
# guest memory at boot. An arch class defines stub(name, args, out) and IF_MASK (where its
# status register keeps the interrupt-enable bit); how each stub does its work, and why in
# that order, is said where the arch encodes it.


class StubCalls:
    def cli(self):
        self.stub("cli")

    def sti(self):
        self.stub("sti")

    def safe_halt(self):
        """Enable interrupts and sleep until one arrives, with no window in which a wake-up
        can be lost between the two (x86: `sti; hlt`; riscv64: `wfi` then enable)."""
        self.stub("safe_halt")

    def halt(self):
        """Sleep until an interrupt, leaving the interrupt-enable bit as it is."""
        self.stub("halt")

    def save_flags_cli(self):
        return self.stub("save_flags_cli")

    def restore_flags(self, flags):
        self.stub("restore_flags", (flags,))

    def interrupts_enabled(self):
        return bool(self.stub("read_flags") & self.IF_MASK)
