"""Sensing benchmark: cost of one Channel.sample() (the 1 Hz sample path) and its heap use.

Measured on the MicroPython unix port (x86; an ESP32 at 240 MHz is roughly 20-50x
slower) and on CPython: time per sample for a methane and a CO channel with the
default and a heavier filter pipeline, heap bytes allocated per steady-state sample
(must be 0), the model conversion alone, the inverse model (simulation only), the
calibration record round trip, and the heap a channel object and the sensing
modules occupy.
"""


from . import BOARDS
from .benchkit import compare_table

SCRIPT = BOARDS / "sim" / "bench_sensing.py"

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
