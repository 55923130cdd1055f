"""Sensing benchmark: cost of one Channel.sample() (the 1 Hz sample path) and its heap use.

Measured on the MicroPython unix port (x86; an ESP32 at 240 MHz is roughly 20-50x
slower) and on CPython: time per sample for a methane and a CO channel with the
default and a heavier filter pipeline, heap bytes allocated per steady-state sample
(must be 0), the model conversion alone, the inverse model (simulation only), the
calibration record round trip, and the heap a channel object and the sensing
modules occupy.
"""


from .benchkit import compare_table

SCRIPT = r'''
import gc, sys, time
gc.collect()
m0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
from gasguard import sensors, calibration
from gasguard.sensors import Channel, SupplyMonitor
from simboard import SimAnalogIn, SimClock
gc.collect()
if hasattr(gc, "mem_alloc"):
    print("import_heap_bytes", gc.mem_alloc() - m0)

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
'''

ROWS = [
    ("ch4_default_us", "Channel.sample() methane, 8× oversample, median 3 (default)", "µs"),
    ("ch4_heavy_us", "Channel.sample() methane, delta + median 5 + EMA", "µs"),
    ("ch4_os1_us", "Channel.sample() methane, 1 read, no filters", "µs"),
    ("co_default_us", "Channel.sample() CO, default", "µs"),
    ("ch4_default_alloc_per_sample", "heap bytes per steady-state sample, methane default", "bytes"),
    ("ch4_heavy_alloc_per_sample", "heap bytes per steady-state sample, methane heavy", "bytes"),
    ("co_default_alloc_per_sample", "heap bytes per steady-state sample, CO", "bytes"),
    ("mos_ppm_ns", "MethaneMOS.ppm_x10() alone (log2/exp2 power law)", "ns"),
    ("mos_inverse_us", "MethaneMOS.uv() inverse (simulation only)", "µs"),
    ("supply_us", "SupplyMonitor.sample() (4 reads)", "µs"),
    ("cal_decode_us", "calibration record decode + checks", "µs"),
    ("cal_record_bytes", "calibration record size (one channel with span)", "bytes"),
    ("ch4_default_object_bytes", "heap of one methane Channel (default filters)", "bytes"),
    ("ch4_heavy_object_bytes", "heap of one methane Channel (heavy filters)", "bytes"),
    ("import_heap_bytes", "heap after importing the sensing modules from source (64-bit unix)", "bytes"),
]


def main():
    compare_table("Sensing (per-sample cost of the 1 Hz sample path)", ROWS, SCRIPT, (), timeout=300)


if __name__ == "__main__":
    main()
