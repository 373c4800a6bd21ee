# Guest memory for hypercall argument structs, used like a C stack frame: allocate, fill,
# call, free, in strict LIFO order. An interrupt handler that runs in between allocates above
# the interrupted code's frame and frees before returning, so neither clobbers the other.


class ArgStack:
    def __init__(self, base, size):
        self.base = base
        self.top = base
        self.limit = base + size

    def alloc(self, n):
        addr = self.top
        top = (addr + n + 7) & ~7
        if top > self.limit:
            raise MemoryError("argument stack exhausted")
        self.top = top
        return addr

    def free(self, addr):
        if not self.base <= addr <= self.top:
            raise ValueError("argument stack freed out of order")
        self.top = addr
