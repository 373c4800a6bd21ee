# Register access and emu_start through raw ctypes calls into libunicorn.
# The Python binding costs 3-5 us per register access; a bare CDLL call with a preallocated
# c_uint64 costs about 0.6 us (reference/unicorn-notes.md §k-m). Every guest<->host
# transition touches a few registers, so this is where round-trip time is won.
import ctypes

import unicorn
from unicorn.unicorn_py3 import unicorn as _ucpy


class _MMR(ctypes.Structure):
    # struct uc_x86_mmr: selector, base, limit, flags (GDTR/IDTR/TR/LDTR).
    _fields_ = [
        ("selector", ctypes.c_uint16),
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


class FastUC:
    """A few hot Unicorn calls without the binding's per-call checks."""

    def __init__(self, uc: unicorn.Uc):
        self.uc = uc
        # A private CDLL: its function objects carry no argtypes, so ctypes does no conversion.
        lib = ctypes.CDLL(_ucpy.uclib._name)
        self._h = uc._uch
        self._rr = lib.uc_reg_read
        self._rw = lib.uc_reg_write
        self._start = lib.uc_emu_start
        self._stop = lib.uc_emu_stop
        self._val = ctypes.c_uint64()
        self._pval = ctypes.byref(self._val)
        self._mmr = _MMR()
        self._pmmr = ctypes.byref(self._mmr)
        self._u64 = ctypes.c_uint64
        self._zero = ctypes.c_uint64(0)
        self._zsize = ctypes.c_size_t(0)

    def read(self, reg):
        self._rr(self._h, reg, self._pval)
        return self._val.value

    def write(self, reg, value):
        self._val.value = value & 0xFFFFFFFFFFFFFFFF
        self._rw(self._h, reg, self._pval)

    def read_mmr(self, reg):
        """(base, limit, selector) of a descriptor-table register such as IDTR or TR."""
        self._rr(self._h, reg, self._pmmr)
        m = self._mmr
        return m.base, m.limit, m.selector

    def start(self, pc):
        """emu_start(pc, until=0): run until hlt/wfi, emu_stop or an error. Returns uc_err."""
        return self._start(self._h, self._u64(pc), self._zero, self._zero, self._zsize)

    def stop(self):
        self._stop(self._h)
