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


def diff(new, old, period=ESP32_TICKS_PERIOD):
    """Signed difference new - old, correct across one wrap (like time.ticks_diff)."""
    half = period >> 1
    return ((new - old + half) & (period - 1)) - half


def add(t, delta, period=ESP32_TICKS_PERIOD):
    return (t + delta) & (period - 1)
