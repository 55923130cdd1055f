# The clock the benchmark scripts (boards/sim/bench_*.py) time with: the MicroPython ticks,
# or on CPython the same from perf_counter (no wrap there, so diff is a subtraction).

import time

try:
    us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    def us():
        return int(time.perf_counter() * 1000000)

    def diff(a, b):
        return a - b


def per_call(fn, n):
    """Mean microseconds of one fn() over n calls."""
    t0 = us()
    for _ in range(n):
        fn()
    return diff(us(), t0) // n
