# Several registers in one raw ctypes call (uc_reg_read_batch / uc_reg_write_batch): each
# call into libunicorn costs about 0.4-0.6 us from Python whatever it does, so a trap that
# needs seven argument registers, or a privilege switch around a CSR write, is cheaper as one
# call. Writes happen in the order given (Unicorn loops over the list).
import ctypes

from unicorn.unicorn_py3 import unicorn as _ucpy

_LIB = None


def _lib():
    global _LIB
    if _LIB is None:
        _LIB = ctypes.CDLL(_ucpy.uclib._name)  # private: no argtypes, no conversions
    return _LIB


class _Batch:
    def __init__(self, uc, regs):
        n = len(regs)
        self._h = uc._uch
        self._n = n
        self._regs = (ctypes.c_int * n)(*regs)
        self.values = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self.values)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])


class BatchRead(_Batch):
    def __init__(self, uc, regs):
        super().__init__(uc, regs)
        self._fn = _lib().uc_reg_read_batch

    def read(self):
        """Read every register; returns the value array (index i = regs[i])."""
        self._fn(self._h, self._regs, self._ptrs, self._n)
        return self.values


class BatchWrite(_Batch):
    def __init__(self, uc, regs):
        super().__init__(uc, regs)
        self._fn = _lib().uc_reg_write_batch

    def write(self):
        """Write self.values to the registers, in order."""
        self._fn(self._h, self._regs, self._ptrs, self._n)
