"""Fill the heap to the last byte and give it back: what the full-heap tests
(host_tests/heap/test_alarm_full_heap.py, test_interlock_heap.py) run each step under."""

import gc


class HeapFill:
    """Up to `blocks` bytearrays, preallocated slots: the largest first (halving from
    `largest` bytes down to 16), then empty ones, until not even a 16-byte object fits."""

    def __init__(self, blocks, largest):
        self.keep = [None] * blocks
        self.largest = largest

    def fill(self):
        """Hold every free byte of the heap; returns gc.mem_free() then (what is left over:
        free bytes in pieces too small for any object)."""
        keep = self.keep
        n = len(keep)
        gc.collect()
        i = 0
        size = self.largest
        while size >= 16:
            try:
                keep[i] = bytearray(size)
                i += 1
            except MemoryError:
                size //= 2
        while i < n:
            try:
                keep[i] = bytearray(0)
                i += 1
            except MemoryError:
                break
        return gc.mem_free()

    def unfill(self):
        keep = self.keep
        for i in range(len(keep)):
            keep[i] = None
        gc.collect()
