"""The simulated RS-485 line: a strict machine.UART double, a microsecond clock, and a
pseudo-terminal UART for the virtual devices (docs/modbus.md, "Virtual RS-485 ports").

    SimUart()       any(), readinto(buf, n), write(buf, n), txdone(); the test side
                    feeds bytes with feed() and takes what the slave sent with take()
    DePin()         the driver-enable output (level, how often the line was driven)
    SimUsClock()    ticks_us/ticks_diff/ticks_add wrapping at 2**30 like the ESP32's,
                    starting 1 s before the wrap; advance_us(us)
    PtyUart(path)   a pseudo-terminal (opened by path) as the UART of a virtual device:
                    reads never wait (select.poll), writes go out at once
    attach_pty(app, path, address)   the Modbus slave of a virtual device on that pty
"""

from simboard import MisuseError

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_PERIOD_MASK = const(0x3FFFFFFF)  # ESP32 ticks wrap at 2**30
_HALF = const(0x20000000)


def _check_n(buf, n):
    if not isinstance(n, int) or n < 0:
        raise MisuseError("n must be a non-negative int")
    if n > len(buf):
        raise MisuseError("n is larger than the buffer")


class SimUart:
    """Allocation-free on the firmware side (fixed buffers), so heap tests measure only
    the slave. feed() beyond `size` waiting bytes drops the rest, like a full FIFO."""

    def __init__(self, size=1024):
        self._in = bytearray(size)
        self._r = 0
        self._w = 0
        self._out = bytearray(size)
        self._n_out = 0
        self.writes = 0
        self.dropped = 0

    # -- machine.UART side (what the firmware may call)
    def any(self):
        return self._w - self._r

    def readinto(self, buf, n=None):
        if not isinstance(buf, bytearray):
            raise MisuseError("readinto() needs a bytearray")
        if n is None:
            n = len(buf)
        _check_n(buf, n)
        k = self._w - self._r
        if k > n:
            k = n
        if k == 0:
            return None  # machine.UART with timeout=0: nothing waiting
        r = self._r
        src = self._in
        for i in range(k):
            buf[i] = src[r + i]
        self._r = r + k
        return k

    def write(self, buf, n=None):
        if isinstance(buf, str):
            raise MisuseError("write() takes bytes, not str")
        if n is None:
            n = len(buf)
        _check_n(buf, n)
        o = self._n_out
        out = self._out
        for i in range(n):
            if o < len(out):
                out[o] = buf[i]
                o += 1
        self._n_out = o
        self.writes += 1
        return n

    def txdone(self):
        return True

    # -- test side
    def feed(self, data):
        if self._r == self._w:
            self._r = self._w = 0
        for b in data:
            if self._w < len(self._in):
                self._in[self._w] = b
                self._w += 1
            else:
                self.dropped += 1

    def take(self):
        out = bytes(self._out[: self._n_out])
        self._n_out = 0
        return out


class DePin:
    """The transceiver's driver-enable output. value(x) allocates nothing (SimPin.value(*args)
    builds a tuple per call; machine.Pin does not), so heap tests can use it; it counts
    the times the line was driven."""

    def __init__(self):
        self.level = 0
        self.sets = 0
        self.drives = 0

    def value(self, v=None):
        if v is None:
            return self.level
        if v and not self.level:
            self.drives += 1
        self.level = 1 if v else 0
        self.sets += 1


class SimUsClock:
    """ticks_us like the ESP32's (period 2**30). The masks are small ints, so unlike
    gasguard.ticks with its period argument (2**30 is a heap int on a 32-bit port) no
    call allocates: heap tests of the slave measure only the slave."""

    def __init__(self, start_us=None):
        self._t = _PERIOD_MASK - 999999 if start_us is None else start_us & _PERIOD_MASK

    def ticks_us(self):
        return self._t

    def ticks_diff(self, new, old):
        d = new - old  # both in 0..2**30-1: no intermediate leaves the small-int range
        if d >= _HALF:
            return (d - _PERIOD_MASK) - 1
        if d < -_HALF:
            return (d + _PERIOD_MASK) + 1
        return d

    def ticks_add(self, t, d):
        if d >= 0 and t > _PERIOD_MASK - d:
            return (t - (_PERIOD_MASK - d)) - 1
        if d < 0 and t < -d:
            return (t + d + _PERIOD_MASK) + 1
        return t + d

    def advance_us(self, us):
        if not isinstance(us, int) or us < 0 or us > _HALF:
            raise MisuseError("advance_us() takes an int in 0..2**29")
        self._t = self.ticks_add(self._t, us)


class PtyUart:
    """The slave end of a pseudo-terminal (already in raw mode) as the device's UART."""

    def __init__(self, path):
        import select

        self._f = open(path, "r+b")
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
        self._one = bytearray(1)

    def any(self):
        return 1 if self._poll.poll(0) else 0

    def readinto(self, buf, n=None):
        if n is None:
            n = len(buf)
        k = 0
        one = self._one
        while k < n and self._poll.poll(0):
            if not self._f.readinto(one):
                break
            buf[k] = one[0]
            k += 1
        return k or None

    def write(self, buf, n=None):
        if n is None:
            n = len(buf)
        self._f.write(bytes(buf[:n]))  # unbuffered: gone to the pty (flush() on a tty is EINVAL)
        return n

    def txdone(self):
        return True


def attach_pty(app, path, address=1):
    """The virtual device's RS-485 port: the Modbus slave (gasguard.devices.attach_modbus,
    as main.py attaches it) on the pty at path, timed by the real clock (time.ticks_us).
    The config's modbus section wins; without one the slave answers at `address`."""
    import time

    from gasguard.devices import attach_modbus

    cfg = app.config if app.config.get("modbus") else {"modbus": {"address": address}}
    return attach_modbus(app, lambda c: (PtyUart(path), None), time, cfg)
