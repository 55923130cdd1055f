"""The device's own heap inside a simulator process, as on the chip (`--heap SIZE`).

On the ESP32 nothing but the firmware lives in the MicroPython heap. A simulated device
shares its interpreter with its harness (the simulated board, air, console, scenario), so
the host tool gives the process the device's heap plus room for the harness, and the
harness holds back what it does not use (Ballast) once it is built: from then on the
device sees exactly SIZE bytes. The firmware modules the harness imports before the
device is built are counted as the device's (it loads them too): device_share.
"""

import gc

_alloc = getattr(gc, "mem_alloc", lambda: 0)


def device_share(*modules):
    """Import firmware modules the harness needs first; return the bytes they took, which
    are the device's heap (it has them), not the harness's."""
    gc.collect()
    a = _alloc()
    for m in modules:
        __import__(m)
    gc.collect()
    return _alloc() - a


class Ballast:
    """Heap the harness holds back so that the device sees exactly device_heap bytes.
    harness: the bytes allocated now that are the harness's (mem_alloc() minus the
    device's share)."""

    def __init__(self, device_heap, harness):
        gc.collect()
        free = gc.mem_free()
        held = gc.mem_alloc() - harness  # the device's part so far (firmware modules)
        n = free - (device_heap - held)
        if n < 0:
            raise SystemExit("ballast: the process heap is %d bytes short of the harness "
                             "+ a %d-byte device heap" % (-n, device_heap))
        self.buf = bytearray(n) if n else None
        self.size = device_heap
