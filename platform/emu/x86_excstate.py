# The exception state QEMU keeps inside Unicorn's x86 CPU and the API does not show: the error
# code of the exception just raised, whether it came from an INT instruction, and the
# "exception in flight" QEMU uses to turn a second fault into #DF.
#
# Unicorn hands each exception to UC_HOOK_INTR with its vector only, and never runs QEMU's
# delivery code (do_interrupt_all), which is what resets env->old_exception to -1. Left alone,
# a guest's second contributory fault or #PF -- however much later -- reaches the hook as
# #DF, and the third stops the CPU as a triple fault (check_exception, excp_helper.c). All
# three fields sit in the part of CPUX86State that uc_context_save/restore copy (up to
# end_reset_fields), so a save, a read, a patch and a restore give the error code and end
# the exception as delivery would. The offsets are found once per process by raising a #GP
# with a known error code in a scratch engine (below), not hard-coded.
import ctypes
import struct

from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_64, Uc
from unicorn.unicorn_py3 import unicorn as _ucpy

_SELECTOR = 0x5A37  # RPL 3, beyond an empty GDT: #GP with error code 0x5A34
_SELECTOR2 = 0x3C1B  # a second probe: error code 0x3C18
_offsets = None  # (error_code, exception_is_int, old_exception) byte offsets, or False


def _lib():
    return ctypes.CDLL(_ucpy.uclib._name)


def _probe():
    """Find the offsets of error_code and old_exception in a saved x86 context."""
    lib = _lib()
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    # mov eax, sel; mov ds, eax; hlt -- twice, with different selectors
    code = b"".join(
        b"\xb8" + struct.pack("<I", s) + b"\x8e\xd8\xf4" for s in (_SELECTOR, _SELECTOR2)
    )
    uc.mem_write(0x1000, code)
    h = uc._uch
    size = lib.uc_context_size(h)
    ptr = ctypes.c_void_p()
    if lib.uc_context_alloc(h, ctypes.byref(ptr)) != 0:
        return False
    try:
        lib.uc_context_save(h, ptr)
        before = ctypes.string_at(ptr.value, size)
        seen = []

        def on_intr(uc, intno, _):
            lib.uc_context_save(h, ptr)
            seen.append((intno, ctypes.string_at(ptr.value, size)))
            uc.emu_stop()

        uc.hook_add(UC_HOOK_INTR, on_intr)
        uc.emu_start(0x1000, 0)
        if len(seen) != 1 or seen[0][0] != 13:
            return False
        after = seen[0][1]
        n = size // 4
        b = struct.unpack(f"<{n}i", before[: 4 * n])
        a = struct.unpack(f"<{n}i", after[: 4 * n])
        err = [4 * i for i in range(n) if a[i] == _SELECTOR & ~3 and b[i] != a[i]]
        old = [4 * i for i in range(n) if a[i] == 13 and b[i] == -1]
        if len(err) != 1 or len(old) != 1:
            return False
        err, old = err[0], old[0]
        # Patch old_exception back to -1, restore, and fault again: a #GP (not #DF) with the
        # second error code proves both offsets.
        ctypes.memmove(ptr.value + old, struct.pack("<i", -1), 4)
        lib.uc_context_restore(h, ptr)
        seen.clear()
        uc.emu_start(0x1008, 0)
        if len(seen) != 1 or seen[0][0] != 13:
            return False
        if struct.unpack_from("<i", seen[0][1], err)[0] != _SELECTOR2 & ~3:
            return False
        return err, err + 4, old  # int error_code; int exception_is_int; (cpu.h order)
    finally:
        lib.uc_context_free(ptr)


def offsets():
    global _offsets
    if _offsets is None:
        try:
            _offsets = _probe()
        except Exception:  # an unexpected Unicorn build: fall back to reconstruction
            _offsets = False
    return _offsets


class ExceptionState:
    """Per-engine access: take() after an exception reached UC_HOOK_INTR."""

    def __init__(self, uc):
        self.offsets = offsets()
        self.available = bool(self.offsets)
        if not self.available:
            return
        self._lib = _lib()
        self._h = uc._uch
        self._size = self._lib.uc_context_size(self._h)
        self._ptr = ctypes.c_void_p()
        if self._lib.uc_context_alloc(self._h, ctypes.byref(self._ptr)) != 0:
            self.available = False

    def take(self):
        """(error_code, is_int) of the exception being reported, and mark it delivered (QEMU's
        old_exception = -1). Call it from the INTR hook, before writing any register."""
        err_off, int_off, old_off = self.offsets
        lib, ptr = self._lib, self._ptr
        lib.uc_context_save(self._h, ptr)
        base = ptr.value
        err = ctypes.c_int32.from_address(base + err_off).value
        is_int = ctypes.c_int32.from_address(base + int_off).value
        old = ctypes.c_int32.from_address(base + old_off)
        if old.value != -1:
            old.value = -1
            lib.uc_context_restore(self._h, ptr)
        return err & 0xFFFFFFFF, bool(is_int)

    def __del__(self):
        if getattr(self, "available", False):
            self._lib.uc_context_free(self._ptr)
