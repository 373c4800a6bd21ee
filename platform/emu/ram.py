# Guest RAM: one host buffer that every vCPU's Unicorn maps with mem_map_ptr, so host code
# reads and writes shared pages with plain struct calls and no Unicorn API call.
import ctypes
import mmap
import struct

PAGE_SIZE = 4096

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GuestMemoryError(Exception):
    """An access outside guest RAM, or into a frame that is currently a hole."""

    def __init__(self, addr, size, why="outside guest RAM"):
        super().__init__(f"guest-physical access of {size} bytes at {addr:#x}: {why}")
        self.addr = addr
        self.size = size


class GuestRAM:
    def __init__(self, size):
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"RAM size must be a positive multiple of {PAGE_SIZE}")
        self.size = size
        self.buf = mmap.mmap(-1, size)
        self.view = memoryview(self.buf)
        self.ptr = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        # Frames the guest gave back (XENMEM_remove_from_physmap): Xen leaves a hole there.
        self.holes = set()

    def check(self, addr, size):
        if addr < 0 or addr + size > self.size:
            raise GuestMemoryError(addr, size)
        if self.holes and (addr >> 12 in self.holes or (addr + size - 1) >> 12 in self.holes):
            raise GuestMemoryError(addr, size, "frame is not populated (a hole)")

    def valid(self, addr, size):
        try:
            self.check(addr, size)
        except GuestMemoryError:
            return False
        return True

    # Host-side accessors. They do not check holes: the hypervisor writes only where it
    # knows a page is mapped, and guest pointers are validated with check() first.
    def u8(self, addr):
        return self.buf[addr]

    def u16(self, addr):
        return _U16.unpack_from(self.buf, addr)[0]

    def u32(self, addr):
        return _U32.unpack_from(self.buf, addr)[0]

    def u64(self, addr):
        return _U64.unpack_from(self.buf, addr)[0]

    def set8(self, addr, v):
        self.buf[addr] = v & 0xFF

    def set16(self, addr, v):
        _U16.pack_into(self.buf, addr, v & 0xFFFF)

    def set32(self, addr, v):
        _U32.pack_into(self.buf, addr, v & 0xFFFFFFFF)

    def set64(self, addr, v):
        _U64.pack_into(self.buf, addr, v & 0xFFFFFFFFFFFFFFFF)

    def read(self, addr, n):
        return bytes(self.view[addr : addr + n])

    def write(self, addr, data):
        self.view[addr : addr + len(data)] = data

    def cstring(self, addr, limit):
        raw = self.read(addr, limit)
        return raw.split(b"\0", 1)[0]
