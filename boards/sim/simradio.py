"""A simulated ESP-NOW medium: radios that lose, duplicate, delay and reorder frames.

    air = SimAir(clock, seed=1, loss_pct=30, dup_pct=5, delay_ms=(1, 20), reorder_pct=5)
    det = air.radio(b"\\x02\\x00\\x00\\x00\\x00\\x01")
    valve = air.radio(b"\\x02\\x00\\x00\\x00\\x00\\x02")
    det.send(valve.mac, b"...")  -> bool      # like espnow.ESPNow.send(mac, msg)
    valve.poll()                -> (mac, data) or None

Runs on MicroPython and CPython, deterministic for a seed on both (own xorshift PRNG,
integer percentages, time from SimClock.elapsed_ms). Everything that goes over the
air is kept in air.log (when air.keep_log is set) so tests can replay recorded frames later; air.inject() puts
foreign or forged frames on the air. Strict like simboard: a MAC that is not 6 bytes,
str instead of bytes, or a frame above the 250-byte ESP-NOW limit raises MisuseError.
"""

from simboard import MisuseError, Xorshift32

BROADCAST = b"\xff\xff\xff\xff\xff\xff"
MAX_LEN = 250


class Rng(Xorshift32):
    """xorshift32 seeded from the air's seed: the same sequence on every interpreter."""

    def __init__(self, seed):
        Xorshift32.__init__(self, (seed * 2654435761 + 1) & 0xFFFFFFFF or 1)

    def pct(self, p):
        """True with probability p percent (p may be a float on the host)."""
        return self.below(1000000) < int(p * 10000)

    def between(self, lo, hi):
        return lo + self.below(hi - lo + 1)


class SimAir:
    def __init__(self, clock, seed=1, loss_pct=0, dup_pct=0, delay_ms=(0, 0), reorder_pct=0,
                 reorder_ms=50, rx_queue=16):
        self.clock = clock
        self.rng = Rng(seed)
        self.loss_pct = loss_pct
        self.dup_pct = dup_pct
        self.delay_ms = delay_ms
        self.reorder_pct = reorder_pct
        self.reorder_ms = reorder_ms
        self.rx_queue = rx_queue
        self.radios = {}
        self.log = []  # (src, dst, data) of every frame sent, in order, while keep_log is set
        self.keep_log = False  # tests turn it on; a long simulation must not grow without bound
        self.stats = {"sent": 0, "dropped": 0, "duplicated": 0, "delivered": 0, "overflow": 0, "injected": 0}
        self._seq = 0

    def radio(self, mac):
        mac = _mac(mac)
        if mac in self.radios:
            raise MisuseError("a radio with this MAC exists already")
        r = SimRadio(self, mac)
        self.radios[mac] = r
        return r

    def _queue(self, src, dst, data, delay):
        for mac in self.radios:
            r = self.radios[mac]
            if mac == src or (dst != BROADCAST and dst != mac) or not r.active:
                continue
            if len(r.inbox) >= self.rx_queue:
                self.stats["overflow"] += 1
                continue
            self._seq += 1
            r.inbox.append((self.clock.elapsed_ms + delay, self._seq, src, data))

    def _delay(self):
        d = self.rng.between(self.delay_ms[0], self.delay_ms[1])
        if self.reorder_pct and self.rng.pct(self.reorder_pct):
            d += self.reorder_ms
        return d

    def transmit(self, src, dst, data):
        self.stats["sent"] += 1
        if self.keep_log:
            self.log.append((src, dst, data))
        if self.loss_pct and self.rng.pct(self.loss_pct):
            self.stats["dropped"] += 1
            return False
        self._queue(src, dst, data, self._delay())
        if self.dup_pct and self.rng.pct(self.dup_pct):
            self.stats["duplicated"] += 1
            self._queue(src, dst, data, self._delay())
        return True

    def inject(self, src, dst, data, delay=0):
        """Put a frame on the air as if `src` had sent it (foreign, forged or replayed)."""
        src = _mac(src)
        dst = _mac(dst)
        data = _data(data)
        self.stats["injected"] += 1
        self._queue(src, dst, data, delay)


class SimRadio:
    def __init__(self, air, mac):
        self.air = air
        self.mac = mac
        self.inbox = []
        self.active = True
        self.sent = 0
        self.received = 0

    def send(self, mac, data):
        if not self.active:
            raise MisuseError("radio is not active")
        mac = _mac(mac)
        data = _data(data)
        self.sent += 1
        return self.air.transmit(self.mac, mac, data)

    def poll(self):
        """The earliest frame that has arrived, or None (non-blocking, like ESPNow.irecv(0))."""
        if not self.inbox:
            return None
        now = self.air.clock.elapsed_ms
        best = -1
        for i in range(len(self.inbox)):
            e = self.inbox[i]
            if e[0] <= now and (best < 0 or (e[0], e[1]) < (self.inbox[best][0], self.inbox[best][1])):
                best = i
        if best < 0:
            return None
        e = self.inbox.pop(best)
        self.received += 1
        self.air.stats["delivered"] += 1
        return e[2], e[3]

    def reset(self):
        """A reboot: frames waiting in the driver are lost."""
        self.inbox = []


def _mac(mac):
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise MisuseError("MAC must be 6 bytes, got %r" % (mac,))
    return bytes(mac)


def _data(data):
    if isinstance(data, str):
        raise MisuseError("ESP-NOW sends bytes, not str")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MisuseError("ESP-NOW data must be bytes-like")
    if len(data) == 0 or len(data) > MAX_LEN:
        raise MisuseError("ESP-NOW frames are 1..250 bytes, got %d" % len(data))
    return bytes(data)
