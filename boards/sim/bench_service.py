# What the service console costs the application loop per poll: run by
# gasguard_tools.bench_service (`make bench`) on MicroPython and CPython.
#
#     micropython boards/sim/bench_service.py
#
# Prints `key value` lines (gasguard_tools.benchkit).

import gc
from gasguard.service import Service
from simboard import SimClock, SimConsole

from benchtime import diff, per_call, us


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


def idle_heap(n):
    # in a function: a module-level loop variable would count the globals dict growing
    gc.collect()
    b = gc.mem_alloc()
    for _ in range(n):
        svc.poll()
    return gc.mem_alloc() - b


if hasattr(gc, "mem_alloc"):
    print("idle_heap_bytes", idle_heap(100))
