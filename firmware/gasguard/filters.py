"""Small pure integer filters and a pipeline of them (ESPHome-style), for the sample path.

Every filter has `update(x) -> int` and `reset()`. They work on ints (µV or ppm×10)
with |x| < 2**24, keep every intermediate value below 2**30 (the ESP32 small-int
range), and allocate nothing after construction: buffers are preallocated lists
that are overwritten in place. Parameters are validated at construction and a bad
one raises ConfigError naming it.

A pipeline is built from data, one single-key dict per stage, e.g.
    [{"delta": {"max": 200000, "hold": 2}}, {"median": 3}, {"ema": 128}]
"""

from gasguard.validate import ConfigError, need_int

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


LIMIT = const(1 << 24)  # |input| bound for every filter (µV up to 16.7 V, ppm×10 up to 1.6e6)


def _clip(x):
    if x >= LIMIT:
        return LIMIT - 1
    if x <= -LIMIT:
        return 1 - LIMIT
    return x


class Median:
    """Median of the last `window` inputs (odd window, 1..15).

    Until the window has filled, the median of what has been seen so far. Output is
    always one of the inputs, hence within their min..max.
    """

    def __init__(self, window=3):
        self.window = need_int({"window": window}, "window", 1, 15)
        if self.window % 2 == 0:
            raise ConfigError("median window: %d must be odd" % window)
        self._ring = [0] * self.window
        self._scratch = [0] * self.window
        self.reset()

    def reset(self):
        self._n = 0
        self._pos = 0

    def update(self, x):
        x = _clip(x)
        w = self.window
        ring = self._ring
        ring[self._pos] = x
        self._pos += 1
        if self._pos == w:
            self._pos = 0
        if self._n < w:
            self._n += 1
        n = self._n
        s = self._scratch
        # insertion sort of the n valid entries into the scratch buffer (no allocation)
        i = 0
        while i < n:
            v = ring[i]
            j = i - 1
            while j >= 0 and s[j] > v:
                s[j + 1] = s[j]
                j -= 1
            s[j + 1] = v
            i += 1
        return s[(n - 1) >> 1]


class Ema:
    """Exponential moving average y += alpha·(x − y), alpha = alpha_256/256 (1..256).

    Exact fixed point: the state is y + r/256 with 0 <= r < 256, and the product is
    split so no intermediate exceeds 2**26. The first input initialises the state.
    Output stays within the min..max of the inputs seen.
    """

    def __init__(self, alpha_256=128):
        self.alpha = need_int({"alpha_256": alpha_256}, "alpha_256", 1, 256)
        self.reset()

    def reset(self):
        self._y = 0
        self._r = 0
        self._init = False

    def update(self, x):
        x = _clip(x)
        if not self._init:
            self._init = True
            self._y = x
            self._r = 0
            return x
        a = self.alpha
        d = x - self._y  # |d| < 2**25
        hi = d >> 8
        lo = d & 255
        r = self._r
        t = r + lo * a - ((r * a) >> 8)  # -256 < t < 2**17
        self._y += hi * a + (t >> 8)
        self._r = t & 255
        return self._y


class Clamp:
    """Limit to lo..hi."""

    def __init__(self, lo, hi):
        self.lo = need_int({"lo": lo}, "lo", 1 - LIMIT, LIMIT - 1)
        self.hi = need_int({"hi": hi}, "hi", 1 - LIMIT, LIMIT - 1)
        if self.lo > self.hi:
            raise ConfigError("clamp: lo %d is above hi %d" % (lo, hi))

    def reset(self):
        pass

    def update(self, x):
        if x < self.lo:
            return self.lo
        if x > self.hi:
            return self.hi
        return x


class DeltaReject:
    """Spike rejection: a jump larger than `max` from the last accepted value is held
    back (the last accepted value is output) for up to `hold` samples; a change that
    persists longer is real and is accepted. hold=0 disables the filter."""

    def __init__(self, max_delta, hold=2):
        self.max = need_int({"max": max_delta}, "max", 1, LIMIT)
        self.hold = need_int({"hold": hold}, "hold", 0, 10)
        self.reset()

    def reset(self):
        self._last = 0
        self._init = False
        self._held = 0
        self.rejected = 0  # count, for diagnostics (capped)

    def update(self, x):
        x = _clip(x)
        if not self._init:
            self._init = True
            self._last = x
            return x
        d = x - self._last
        if (d > self.max or d < -self.max) and self._held < self.hold:
            self._held += 1
            if self.rejected < 1000000:
                self.rejected += 1
            return self._last
        self._held = 0
        self._last = x
        return x


class MovingAverage:
    """Mean of the last `window` inputs (1..32), running sum, rounded toward -inf."""

    def __init__(self, window=4):
        self.window = need_int({"window": window}, "window", 1, 32)
        self._ring = [0] * self.window
        self.reset()

    def reset(self):
        self._n = 0
        self._pos = 0
        self._sum = 0
        for i in range(self.window):
            self._ring[i] = 0

    def update(self, x):
        x = _clip(x)  # 32 · 2**24 = 2**29: the sum stays in range
        ring = self._ring
        self._sum += x - ring[self._pos]
        ring[self._pos] = x
        self._pos += 1
        if self._pos == self.window:
            self._pos = 0
        if self._n < self.window:
            self._n += 1
        return self._sum // self._n


class Offset:
    def __init__(self, offset):
        self.offset = need_int({"offset": offset}, "offset", 1 - LIMIT, LIMIT - 1)

    def reset(self):
        pass

    def update(self, x):
        return _clip(_clip(x) + self.offset)


_KINDS = ("median", "ema", "clamp", "delta", "average", "offset")


def make(spec):
    """One filter from a single-key dict, e.g. {"median": 5} or {"clamp": [0, 3000000]}."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError("filter: expected a single-key dict like {\"median\": 3}, got %r" % (spec,))
    for kind in spec:
        arg = spec[kind]
    if kind == "median":
        return Median(arg)
    if kind == "ema":
        if isinstance(arg, dict):
            _only(arg, ("alpha_256",), "ema")
            arg = arg.get("alpha_256", 128)
        return Ema(arg)
    if kind == "clamp":
        if not isinstance(arg, (list, tuple)) or len(arg) != 2:
            raise ConfigError("clamp: expected [lo, hi], got %r" % (arg,))
        return Clamp(arg[0], arg[1])
    if kind == "delta":
        if isinstance(arg, dict):
            _only(arg, ("max", "hold"), "delta")
            return DeltaReject(arg.get("max"), arg.get("hold", 2))
        return DeltaReject(arg)
    if kind == "average":
        return MovingAverage(arg)
    if kind == "offset":
        return Offset(arg)
    raise ConfigError("filter: unknown kind %r (known: %s)" % (kind, ", ".join(_KINDS)))


def _only(d, keys, where):
    for k in d:
        if k not in keys:
            raise ConfigError("%s: unknown key %r" % (where, k))


class Pipeline:
    """Filters applied in order. Built completely before use: a bad stage raises and
    nothing is half-built."""

    def __init__(self, specs=()):
        if not isinstance(specs, (list, tuple)):
            raise ConfigError("filters: expected a list, got %r" % (specs,))
        if len(specs) > 8:
            raise ConfigError("filters: %d stages, at most 8" % len(specs))
        self.stages = [make(s) for s in specs]

    def reset(self):
        for f in self.stages:
            f.reset()

    def update(self, x):
        for f in self.stages:
            x = f.update(x)
        return x
