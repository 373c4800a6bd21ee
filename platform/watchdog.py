# A safety net for runs that stop making progress in a way virtual time cannot see: guest
# Python stuck in a pure-Python loop (no HAL call), or a native kernel spinning inside
# emu_start (no exit). The watchdog watches a progress counter, not time: a run that keeps
# making progress is never interrupted by it, so runs stay deterministic.
import _thread
import threading
import time


class Watchdog(threading.Event):
    """Set (as an Event) once `progress()` has not changed for stall_s wall seconds; then it
    stops emulation on every vCPU (uc_emu_stop is safe from another thread, unicorn-notes
    §0.5) and, with interrupt_main, raises KeyboardInterrupt in the main thread to end a
    Python loop. Without it, it re-stops on every tick until the run ends: a stop that lands
    while the host, not emu_start, is running does nothing."""

    def __init__(self, vcpus, progress, stall_s, interrupt_main=False):
        super().__init__()
        self.vcpus = vcpus
        self.progress = progress
        self.stall_s = stall_s
        self.interrupt_main = interrupt_main
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="micropv-watchdog", daemon=True)

    @property
    def fired(self):
        return self.is_set()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        return False

    def _watch(self):
        last, since = self.progress(), time.monotonic()
        while not self._done.wait(min(0.25, self.stall_s)):
            now = time.monotonic()
            if not self.is_set() and self.progress() != last:
                last, since = self.progress(), now
            elif self.is_set() or now - since >= self.stall_s:
                first = not self.is_set()
                self.set()
                for vcpu in self.vcpus:
                    vcpu.fast.stop()
                if self.interrupt_main:
                    if first:
                        _thread.interrupt_main()
                    return
