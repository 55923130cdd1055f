# Cost of the 1 Hz sample path (Channel.sample(), models, calibration record, supply
# monitor) and its heap: run by gasguard_tools.bench_sensing (`make bench`) on MicroPython
# and CPython.
#
#     micropython boards/sim/bench_sensing.py
#
# Prints `key value` lines (gasguard_tools.benchkit).
# (A comment, not a docstring: a docstring moves the heap figures printed here.)

import gc, sys, time
gc.collect()
m0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
from gasguard import sensors, calibration
from gasguard.sensors import Channel, SupplyMonitor
from simboard import SimAnalogIn, SimClock
gc.collect()
if hasattr(gc, "mem_alloc"):
    print("import_heap_bytes", gc.mem_alloc() - m0)

# its own clock, not benchtime's: the whole script is compiled before the import figure
# above is taken, and any change to its text moves that figure (qstr pool steps)
try:
    us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    us = lambda: int(time.perf_counter() * 1000000)
    diff = lambda a, b: a - b

state = [12345]
def noisy():
    state[0] = (state[0] * 1103515245 + 12345) & 0x3FFFFFFF
    return 1400000 + (state[0] >> 16) % 3000

def bench(name, model, cfg, n=2000):
    clock = SimClock()
    cal = calibration.ChannelCal(model.gas, model.name, model.clean_air_uv)
    if hasattr(gc, "mem_alloc"):
        gc.collect(); b = gc.mem_alloc()
    ch = Channel(SimAnalogIn(noisy), clock, model, cal, cfg)
    if hasattr(gc, "mem_alloc"):
        gc.collect(); print(name + "_object_bytes", gc.mem_alloc() - b)
    for _ in range(50):
        clock.advance(1000); ch.sample()
    gc.collect()
    if hasattr(gc, "disable"):
        gc.disable()
    a0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    i = 0
    t0 = us()
    while i < n:
        clock.advance(1000)
        ch.sample()
        i += 1
    t = diff(us(), t0)
    a1 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    if hasattr(gc, "enable"):
        gc.enable()
    print(name + "_us", t // n)
    if hasattr(gc, "mem_alloc"):
        print(name + "_alloc_per_sample", (a1 - a0) // n)

heavy = {"filters": [{"delta": {"max": 200000, "hold": 2}}, {"median": 5}, {"ema": 64}]}
bench("ch4_default", sensors.MethaneMOS({}), {})
bench("ch4_heavy", sensors.MethaneMOS({}), heavy)
bench("ch4_os1", sensors.MethaneMOS({}), {"oversample": 1, "filters": []})
bench("co_default", sensors.ElectrochemCO({}), {})

m = sensors.MethaneMOS({})
def per_call(fn, n):
    t0 = us()
    i = 0
    while i < n:
        fn()
        i += 1
    return diff(us(), t0) // max(1, n)
uv = m.uv(50000)
t0 = us()
i = 0
while i < 5000:
    m.ppm_x10(uv)
    i += 1
print("mos_ppm_ns", diff(us(), t0) * 1000 // 5000)
print("mos_inverse_us", per_call(lambda: m.uv(50000), 2000))
rec = calibration.CalibrationRecord().with_zero({"model": "mq4"}, m.clean_air_uv, 20260101, "bench")
rec = rec.with_span({"model": "mq4"}, uv, 50000, 20260101, "bench")
blob = rec.encode()
print("cal_record_bytes", len(blob))
print("cal_decode_us", per_call(lambda: calibration.CalibrationRecord.decode(blob), 500))
sup = SupplyMonitor(SimAnalogIn(2500000), SimClock(), {})
print("supply_us", per_call(sup.sample, 5000))
