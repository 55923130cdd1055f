"""Service console benchmark: what the console costs the application loop.

Service.poll() runs in the same loop as the alarm path, so its worst case per call bounds
how long a busy console can delay a sample step. Measured on the MicroPython unix port
(x86; an ESP32 at 240 MHz is roughly 20-50x slower) and on CPython: an idle poll, a poll
that completes a STATUS?-class request against a small facade, a garbage line, and the
heap an idle poll allocates (must be 0: the line buffer is preallocated).
"""


from .benchkit import compare_table

SCRIPT = r'''
import gc, time
from gasguard.service import Service
from simboard import SimClock, SimConsole

try:
    us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    us = lambda: int(time.perf_counter() * 1000000)
    diff = lambda a, b: a - b


class Dev:
    identity = None

    def info(self):
        return {"fw": "0.1.0", "kind": "detector", "tier": "mid", "profile": "cn", "board": "b"}

    def readings(self):
        return {"ch4": {"ppm_x10": 123, "raw_uv": 700000, "fault": None, "warming_up": False},
                "co": {"ppm_x10": 0, "raw_uv": 430000, "fault": None, "warming_up": False},
                "uptime_s": 1234}

    def factory_key(self):
        return None


class Null(SimConsole):
    def write(self, b):
        return len(b)


clock = SimClock()
con = Null()
svc = Service(con, Dev(), clock)

def per_call(fn, n):
    t0 = us()
    for _ in range(n):
        fn()
    return diff(us(), t0) // n

print("idle_us", per_call(svc.poll, 2000))
def read_line():
    con.feed(b"#t1 READ?\n")
    svc.poll()
print("read_us", per_call(read_line, 300))
def garbage():
    con.feed(b"\x00\xff\x1b[A garbage\n")
    svc.poll()
print("garbage_us", per_call(garbage, 300))
def long_line():
    con.feed(b"x" * 64)
    svc.poll()
print("chunk64_us", per_call(long_line, 300))
con.feed(b"\n")
svc.poll()
gc.collect()
if hasattr(gc, "mem_alloc"):
    b = gc.mem_alloc()
    for _ in range(100):
        svc.poll()
    print("idle_heap_bytes", gc.mem_alloc() - b)
'''

ROWS = [
    ("idle_us", "poll() with no input (mean)", "µs"),
    ("read_us", "poll() completing a tagged READ? and writing the JSON reply", "µs"),
    ("garbage_us", "poll() rejecting a garbage line (E_GARBAGE reply)", "µs"),
    ("chunk64_us", "poll() taking a 64-byte chunk of an overlong line", "µs"),
    ("idle_heap_bytes", "heap allocated by 100 idle polls (MicroPython)", "bytes"),
]


def main():
    compare_table("Service console (cost per poll in the application loop)", ROWS, SCRIPT, (), timeout=120)


if __name__ == "__main__":
    main()
