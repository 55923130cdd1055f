# Cost of one Detector.step() (real channels, simulated board, 1 Hz steps): run by
# gasguard_tools.bench_detector (`make bench`) on MicroPython and CPython.
#
#     micropython boards/sim/bench_detector.py
#
# Prints one JSON line: {state: [us per step, heap bytes per step]} for clean air and a CO
# alarm (heap bytes: MicroPython only; 0 in steady state).

import gc, json
import replay_detector as R
from benchtime import us, diff

class Null:
    def write(self, s):
        pass

class Pin:
    def __init__(self):
        self.level = 0
    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

def bench(co_x10, n):
    r = R.Runner({"device": "detector", "config": {"profile": "cn", "tier": "mid"}, "seed": 1},
                 Null())
    o = r.det.outputs
    for pp in (o.green, o.yellow, o.red, o.buzzer):
        pp.pin = Pin()
    o.relay_pin = Pin()
    r.env.co_x10 = co_x10
    det = r.det
    clock = r.clock
    for _ in range(700):
        clock.advance(1000)
        det.step()
    gc.collect()
    a = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    t0 = us()
    for _ in range(n):
        clock.advance(1000)
        det.step()
    t = diff(us(), t0)
    b = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    return t / n, (b - a) / n

out = {}
for name, co in (("clean_air", 0), ("co_alarm", 4000)):
    out[name] = bench(co, 2000)
print(json.dumps(out) if "json" in dir() else out)
