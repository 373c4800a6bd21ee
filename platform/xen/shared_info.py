# The domain's shared_info page. Xen allocates it; the guest chooses at which frame it appears
# (XENMEM_add_to_physmap) and may move it. Host code reads and writes it through `buf`/`base`,
# which follow it: a host buffer while unmapped, guest RAM once mapped.
import struct

from micropv.runtime.abi.xen import PAGE_SHIFT, PAGE_SIZE


class SharedInfoPage:
    def __init__(self, machine, layout):
        self.machine = machine
        self.layout = layout
        self.gfn = None
        self.buf = bytearray(PAGE_SIZE)
        self.base = 0

    def map_at(self, gfn):
        """Move the page to frame gfn, keeping its contents. Whatever RAM was at gfn is gone
        (Xen frees it), and the frame it leaves becomes a hole, as in Xen's p2m."""
        contents = bytes(self.buf[self.base : self.base + PAGE_SIZE])
        if self.gfn == gfn:
            return
        if self.gfn is not None:
            self.machine.set_hole(self.gfn, True)
        self.machine.set_hole(gfn, False)
        ram = self.machine.ram
        ram.write(gfn << PAGE_SHIFT, contents)
        self.gfn = gfn
        self.buf = ram.buf
        self.base = gfn << PAGE_SHIFT

    def unmap(self):
        ram = self.machine.ram
        self.buf = bytearray(ram.read(self.base, PAGE_SIZE))
        self.machine.set_hole(self.gfn, True)
        self.gfn = None
        self.base = 0

    def u8(self, off):
        return self.buf[self.base + off]

    def u32(self, off):
        return struct.unpack_from("<I", self.buf, self.base + off)[0]

    def u64(self, off):
        return struct.unpack_from("<Q", self.buf, self.base + off)[0]

    def set8(self, off, v):
        self.buf[self.base + off] = v & 0xFF

    def set32(self, off, v):
        struct.pack_into("<I", self.buf, self.base + off, v & 0xFFFFFFFF)

    def set64(self, off, v):
        struct.pack_into("<Q", self.buf, self.base + off, v & 0xFFFFFFFFFFFFFFFF)
