"""A simulated ESP-NOW radio whose every buffer is allocated at construction: send copies a
frame into one of the peer's 8 preallocated slots, poll hands out a preallocated view. The
full-heap tests (host_tests/heap/test_alarm_full_heap.py, test_interlock_heap.py) run the firmware
with not one free heap block, so the simulated air itself must allocate nothing."""


class SlotRadio:
    """One end of a wire of preallocated slots: send copies in, poll hands out a view."""

    def __init__(self, mac, min_len=1):
        self.mac = mac
        self.peer = None
        self.slots = [bytearray(96) for _ in range(8)]
        self.lens = [0] * 8
        self.views = {}
        # every length up to 63 (the link's frames), and the two pairing frames (74, 90 B)
        for n in list(range(min_len, 64)) + [74, 90]:
            self.views[n] = [memoryview(s)[:n] for s in self.slots]
        self.head = 0
        self.count = 0
        self.got = [None, None]
        self.sent = 0

    def send(self, mac, data):
        p = self.peer
        if p.count == 8:
            return False
        i = (p.head + p.count) % 8
        s = p.slots[i]
        n = len(data)
        for k in range(n):
            s[k] = data[k]
        p.lens[i] = n
        p.count += 1
        self.sent += 1
        return True

    def poll(self):
        if not self.count:
            return None
        i = self.head
        self.head = (i + 1) % 8
        self.count -= 1
        self.got[0] = self.peer.mac
        self.got[1] = self.views[self.lens[i]][i]
        return self.got
