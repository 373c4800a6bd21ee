# Guest -> test messages (KVM selftests' ucall): sync points, checks and done, each carrying
# the guest's file:line. The record goes into guest memory and one `out` tells the host where.
from ._compat import const

UCALL_SYNC = const(1)
UCALL_ABORT = const(2)  # a check failed
UCALL_DONE = const(3)
UCALL_EXIT = const(4)  # exit status for the shutdown that follows

# Record layout: cmd u32, line u32, a u64, b u64, file length u16, message length u16,
# then the file name and the message bytes.
UCALL_HEADER = const(28)
UCALL_MAX_TEXT = const(512)


def encode(cmd, file, line, a, b, msg):
    fb = file.encode()[-200:]
    mb = msg.encode()[:UCALL_MAX_TEXT]
    hdr = bytearray(UCALL_HEADER)
    for off, n, v in ((0, 4, cmd), (4, 4, line), (8, 8, a), (16, 8, b),
                      (24, 2, len(fb)), (26, 2, len(mb))):  # fmt: skip
        v &= (1 << (8 * n)) - 1
        for i in range(n):
            hdr[off + i] = (v >> (8 * i)) & 0xFF
    return bytes(hdr) + fb + mb


def send(rt, cmd, file, line, a=0, b=0, msg=""):
    rec = encode(cmd, file, line, a, b, msg)
    addr = rt.args.alloc(len(rec))
    try:
        rt.hal.write(addr, rec)
        rt.arch.ucall(addr)
    finally:
        rt.args.free(addr)
