# A safety net for guests that stop touching the machine: guest Python stuck in a pure-Python
# loop makes no HAL call, so virtual time stands still and the virtual budget cannot end the
# run. The watchdog watches for *progress* (HAL calls), not for time: a guest that keeps
# calling into the machine is never interrupted by it, so runs stay deterministic.
import _thread
import threading
import time


class Watchdog:
    def __init__(self, machine, hal, stall_s):
        self.machine = machine
        self.hal = hal
        self.stall_s = stall_s
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="micropv-watchdog", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        return False

    def _watch(self):
        last = self.hal.boundaries
        since = time.monotonic()
        while not self._done.wait(min(0.5, self.stall_s)):
            now = time.monotonic()
            if self.hal.boundaries != last:
                last, since = self.hal.boundaries, now
            elif now - since >= self.stall_s:
                self.fired = True
                for vcpu in self.machine.vcpus:
                    vcpu.fast.stop()  # emu_stop from another thread is safe (unicorn-notes §0.5)
                _thread.interrupt_main()
                return
