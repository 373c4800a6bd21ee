# micropv guest runtime: MicroPython-compatible, imports nothing outside itself.
# Loads as `micropv.runtime` under CPython and as `runtime` under MicroPython.
