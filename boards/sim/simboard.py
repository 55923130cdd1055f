"""The simulated board: strict stand-ins for the ESP32 peripherals the firmware uses.

Runs on MicroPython and CPython alike. Each fake follows the MicroPython signature it
replaces and raises on misuse (wrong argument types, reading an output as an input,
using a peripheral after deinit), so code that works here is code that calls the real
API correctly. Time never passes by itself: tests and the simulator advance SimClock.

Nothing here allocates per call in steady state on the ESP32's object model (31-bit small
ints, docs/runtime.md), and nothing keeps an unbounded history, so a simulated device's
heap figures are the firmware's own and any scenario length runs.
"""

from gasguard import ticks
from gasguard.store import FileStore


class MisuseError(Exception):
    """The firmware called a simulated peripheral the way real hardware would not allow."""


class SimClock:
    """ticks_ms/ticks_diff/ticks_add with the ESP32's 2**30 wrap, driven by advance()."""

    PERIOD = ticks.ESP32_TICKS_PERIOD

    def __init__(self, start_ms=None):
        # Start 10 minutes before the wrap so every test crosses it early.
        if start_ms is None:
            start_ms = self.PERIOD - 600000
        if not isinstance(start_ms, int) or start_ms < 0 or start_ms >= self.PERIOD:
            raise MisuseError("start_ms must be an int in 0..2**30-1")
        self._ticks = start_ms
        self.elapsed_ms = 0  # never wraps: for the harness only, not for firmware

    def ticks_ms(self):
        return self._ticks

    def ticks_diff(self, new, old):
        return ticks.diff(new, old)

    def ticks_add(self, t, delta):
        return ticks.add(t, delta)

    def advance(self, ms):
        if not isinstance(ms, int) or ms < 0:
            raise MisuseError("advance() takes a non-negative int of milliseconds")
        self._ticks = ticks.add(self._ticks, ms)
        # a small int for 2**30 ms (12.4 days); beyond, a heap int per advance (garbage,
        # not growth): the harness's counter, never the firmware's clock
        self.elapsed_ms += ms


class SimAnalogIn:
    """machine.ADC with read_uv(): microvolts after the eFuse calibration.

    The value comes from `source` (a callable returning µV, or a fixed int); the ESP32
    ADC at 11 dB attenuation reads about 150..2450 mV linearly and clips outside, so
    the fake clips to [0, full_scale_uv] like the real pin does.
    """

    def __init__(self, source=0, full_scale_uv=3100000):
        self.source = source
        self.full_scale_uv = full_scale_uv
        self.reads = 0

    def read_uv(self):
        src = self.source
        v = src() if callable(src) else src
        if not isinstance(v, int):
            v = int(v)
        if v < 0:
            v = 0
        elif v > self.full_scale_uv:
            v = self.full_scale_uv
        self.reads += 1
        return v


_UNSET = object()


class SimPin:
    """machine.Pin in IN or OUT mode; value() with no argument reads, value(x) writes.

    An output with a clock attached records its last HISTORY level changes (a ring, so a
    long run keeps a fixed size): `history` gives them as (elapsed_ms, level) pairs,
    oldest first, and `changes` counts every change since power-on."""

    IN = 1
    OUT = 3
    HISTORY = 32

    def __init__(self, name, mode, value=0):
        if mode not in (SimPin.IN, SimPin.OUT):
            raise MisuseError("pin %s: mode must be Pin.IN or Pin.OUT" % name)
        self.name = name
        self.mode = mode
        self._level = 1 if value else 0
        self.clock = None
        self.changes = 0
        self._t = [0] * SimPin.HISTORY if mode == SimPin.OUT else None
        self._lv = bytearray(SimPin.HISTORY) if mode == SimPin.OUT else None

    @property
    def history(self):
        n = self.HISTORY
        first = self.changes - n if self.changes > n else 0
        return [(self._t[i % n], self._lv[i % n]) for i in range(first, self.changes)]

    def value(self, v=_UNSET):
        if v is _UNSET:
            return self._level
        if self.mode != SimPin.OUT:
            raise MisuseError("pin %s is an input: it cannot be driven" % self.name)
        level = 1 if v else 0
        if level != self._level and self.clock is not None:
            i = self.changes % self.HISTORY
            self._t[i] = self.clock.elapsed_ms
            self._lv[i] = level
            self.changes += 1
        self._level = level
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=_UNSET):
        return self.value(v)

    def set_input(self, level):
        """Harness side: what the outside world puts on an input pin."""
        if self.mode != SimPin.IN:
            raise MisuseError("pin %s is an output" % self.name)
        self._level = 1 if level else 0


class Xorshift32:
    """xorshift32 (13, 17, 5): the same sequence on every interpreter, computed on two 16-bit
    halves so no int leaves the 31-bit small-int range (a 32-bit int allocates on the
    ESP32's object model). After step(), hi and lo are the state's halves; next() gives
    the whole 32-bit value (a heap int there: for setup, not per read)."""

    def __init__(self, state):
        state &= 0xFFFFFFFF
        self.hi = state >> 16
        self.lo = state & 0xFFFF

    def step(self):
        hi = self.hi
        lo = self.lo
        # x ^= x << 13
        hi ^= ((hi << 13) | (lo >> 3)) & 0xFFFF
        lo ^= (lo << 13) & 0xFFFF
        # x ^= x >> 17
        lo ^= hi >> 1
        # x ^= x << 5
        hi ^= ((hi << 5) | (lo >> 11)) & 0xFFFF
        lo ^= (lo << 5) & 0xFFFF
        self.hi = hi
        self.lo = lo

    def next(self):
        self.step()
        return (self.hi << 16) | self.lo

    def below(self, n):
        """next() % n without a 32-bit int, for n <= 2**22 (0 without a step for n <= 0)."""
        if n <= 0:
            return 0
        self.step()
        r = self.hi % n
        r = ((r << 8) | (self.lo >> 8)) % n
        return ((r << 8) | (self.lo & 0xFF)) % n


class SimWatchdog:
    """machine.WDT: once started it must be fed within timeout_ms or the board resets."""

    def __init__(self, clock, timeout_ms=8000):
        if not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise MisuseError("WDT timeout must be a positive int")
        self.clock = clock
        self.timeout_ms = timeout_ms
        self._fed = clock.ticks_ms()
        self.feeds = 0

    def feed(self):
        self._fed = self.clock.ticks_ms()
        self.feeds += 1

    def expired(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self._fed) > self.timeout_ms


class SimConsole:
    """The serial console as a byte stream: the harness writes input, firmware reads it.

    read(n) returns at most n bytes or None when nothing is waiting, like a UART or
    sys.stdin in non-blocking use; write() collects output for the harness.
    """

    def __init__(self):
        self._rx = bytearray()
        self._tx = bytearray()

    def feed(self, data):
        if isinstance(data, str):
            data = data.encode()
        self._rx.extend(data)

    def any(self):
        return len(self._rx)

    def read(self, n=-1):
        if not self._rx:
            return None
        if n < 0 or n > len(self._rx):
            n = len(self._rx)
        out = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return out

    def write(self, data):
        if isinstance(data, str):
            raise MisuseError("console.write() takes bytes, not str")
        self._tx.extend(data)
        return len(data)

    def take_output(self):
        out = bytes(self._tx)
        self._tx = bytearray()
        return out


class MemStore:
    """The store interface in RAM, for runs that must not touch the disk (replay).

    Same contract as gasguard.store.FileStore: read() gives None for a missing name,
    size() gives 0."""

    def __init__(self):
        self.d = {}

    def read(self, name):
        return self.d.get(name)

    def write(self, name, data):
        self.d[name] = bytes(data)

    def append(self, name, data):
        self.d[name] = self.d.get(name, b"") + bytes(data)

    def size(self, name):
        v = self.d.get(name)
        return 0 if v is None else len(v)

    def remove(self, name):
        self.d.pop(name, None)

    def rename(self, name, new):
        self.d[new] = self.d.pop(name)

    def read_at(self, name, pos, n):
        return self.d.get(name, b"")[pos : pos + n]

    def names(self):
        return sorted(self.d)


class PowerCutStore(FileStore):
    """A FileStore whose power can be cut after a given number of written bytes.

    After the cut every write (and remove, which counts as one byte) raises OSError (EIO)
    as on a browned-out flash. The
    bytes up to the cut point are really on disk, so a reboot (a new FileStore on
    the same root) sees exactly what a power loss at that byte would leave: for
    write() the temp file is torn and the rename never happened; for append() the
    log has a torn tail.
    """

    def __init__(self, root, budget=None):
        FileStore.__init__(self, root)
        self.budget = budget  # bytes that may still be written; None = unlimited
        self.written = 0

    def _spend(self, data):
        if self.budget is None:
            self.written += len(data)
            return data, False
        n = len(data)
        if n <= self.budget:
            self.budget -= n
            self.written += n
            return data, False
        part = data[: self.budget]
        self.written += self.budget
        self.budget = 0
        return part, True

    def write(self, name, data):
        path = self._path(name)
        tmp = self.root + "/." + name + ".tmp"
        part, cut = self._spend(data)
        with open(tmp, "wb") as f:
            f.write(part)
        if cut:
            raise OSError(5)
        import os

        os.rename(tmp, path)

    def append(self, name, data):
        part, cut = self._spend(data)
        with open(self._path(name), "ab") as f:
            f.write(part)
        if cut:
            raise OSError(5)

    def remove(self, name):
        # A remove costs one unit of the budget: cut before it, the file is still there.
        if self._spend(b"\x00")[1]:
            raise OSError(5)
        FileStore.remove(self, name)

    def rename(self, name, new):
        # Atomic, like remove one unit: cut before it, both files are as they were.
        if self._spend(b"\x00")[1]:
            raise OSError(5)
        FileStore.rename(self, name, new)
