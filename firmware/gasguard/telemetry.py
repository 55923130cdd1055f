"""Telemetry ring: a bounded RAM queue that drops the oldest entry and counts it.

Telemetry is periodic and superseded by the next reading, so it never touches flash;
while offline only the newest `slots` messages are kept. `dropped` counts every
message pushed out (total since boot) and is reported in each telemetry message, so
the platform sees gaps without guessing.
"""


class TelemetryRing:
    def __init__(self, slots=8):
        if not isinstance(slots, int) or slots < 1 or slots > 256:
            raise ValueError("telemetry slots must be 1..256")
        self.slots = slots
        self._buf = [None] * slots  # preallocated; entries are message bytes
        self._head = 0  # oldest
        self._n = 0
        self.dropped = 0

    def push(self, item):
        if self._n == self.slots:
            self._buf[self._head] = item  # overwrite the oldest
            self._head = (self._head + 1) % self.slots
            self.dropped += 1
            return False
        self._buf[(self._head + self._n) % self.slots] = item
        self._n += 1
        return True

    def peek(self):
        return self._buf[self._head] if self._n else None

    def pop(self):
        if not self._n:
            return None
        item = self._buf[self._head]
        self._buf[self._head] = None
        self._head = (self._head + 1) % self.slots
        self._n -= 1
        return item

    def __len__(self):
        return self._n
