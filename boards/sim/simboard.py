"""The simulated board: strict stand-ins for the ESP32 peripherals the firmware uses.

Runs on MicroPython and CPython alike. Each fake follows the MicroPython signature it
replaces and raises on misuse (wrong argument types, reading an output as an input,
using a peripheral after deinit), so code that works here is code that calls the real
API correctly. Time never passes by itself: tests and the simulator advance SimClock.
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
        return ticks.diff(new, old, self.PERIOD)

    def ticks_add(self, t, delta):
        return ticks.add(t, delta, self.PERIOD)

    def advance(self, ms):
        if not isinstance(ms, int) or ms < 0:
            raise MisuseError("advance() takes a non-negative int of milliseconds")
        self._ticks = ticks.add(self._ticks, ms, self.PERIOD)
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

    def read_uv(self, *args):
        if args:
            raise MisuseError("ADC.read_uv() takes no arguments")
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


class SimPin:
    """machine.Pin in IN or OUT mode; value() with no argument reads, value(x) writes."""

    IN = 1
    OUT = 3

    def __init__(self, name, mode, value=0):
        if mode not in (SimPin.IN, SimPin.OUT):
            raise MisuseError("pin %s: mode must be Pin.IN or Pin.OUT" % name)
        self.name = name
        self.mode = mode
        self._level = 1 if value else 0
        self.history = []  # (elapsed_ms, level) for outputs, filled when a clock is attached
        self.clock = None

    def value(self, *args):
        if not args:
            return self._level
        if len(args) > 1:
            raise MisuseError("Pin.value() takes at most one argument")
        if self.mode != SimPin.OUT:
            raise MisuseError("pin %s is an input: it cannot be driven" % self.name)
        level = 1 if args[0] else 0
        if level != self._level and self.clock is not None:
            self.history.append((self.clock.elapsed_ms, level))
        self._level = level
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, *args):
        return self.value(*args)

    def set_input(self, level):
        """Harness side: what the outside world puts on an input pin."""
        if self.mode != SimPin.IN:
            raise MisuseError("pin %s is an output" % self.name)
        self._level = 1 if level else 0


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

    def names(self):
        return sorted(self.d)


class PowerCutStore(FileStore):
    """A FileStore whose power can be cut after a given number of written bytes.

    After the cut every write raises OSError (EIO) as on a browned-out flash. The
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
