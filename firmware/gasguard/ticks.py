"""ticks arithmetic with an explicit period, for clocks that are not the `time` module.

On the device the clock object is the `time` module itself (ticks_ms, ticks_diff,
ticks_add wrap at 2**30 on the ESP32). The simulated clock uses these helpers with
the same period so wrap-around bugs show up on the host.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


ESP32_TICKS_PERIOD = const(1 << 30)
# The arithmetic never forms an int outside the ESP32's 31-bit small-int range (such an
# int is a heap object there: 1 << 30 itself is one), so it allocates nothing.
_MASK = const((1 << 30) - 1)
_HALF = const(1 << 29)


def diff(new, old):
    """Signed difference new - old of two ticks in 0..2**30-1, correct across one wrap
    (like time.ticks_diff)."""
    d = (new - old) & _MASK
    if d >= _HALF:
        d = d - _HALF - _HALF
    return d


def add(t, delta):
    """t + delta modulo 2**30 (like time.ticks_add); t in 0..2**30-1."""
    delta &= _MASK
    if t > _MASK - delta:
        return t - (_MASK - delta) - 1
    return t + delta
