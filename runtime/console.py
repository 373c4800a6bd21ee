# Console output through console_io(CONSOLEIO_write), the simplest console a Xen guest has.
from .abi import console as C

_CHUNK = 512


def write(rt, data):
    if isinstance(data, str):
        data = data.encode()
    for i in range(0, len(data), _CHUNK):
        part = data[i : i + _CHUNK]
        buf = rt.args.alloc(len(part))
        try:
            rt.hal.write(buf, part)
            rt.hc.check("CONSOLEIO_write", rt.hc.console_io(C.CONSOLEIO_write, len(part), buf))
        finally:
            rt.args.free(buf)
