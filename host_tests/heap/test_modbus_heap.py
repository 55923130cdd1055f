"""The Modbus RTU slave on the ESP32-like 32-bit interpreter, from .mpy at a 112k heap:
no allocation per idle poll or per register read, and its heap within budget
(deterministic figures; the costs in time are in docs/benchmarks.md, `make bench`)."""

import json

import pytest

from conftest import ESP32_HEAP, ROOT, run_micropython

# budgets on the ESP32-like heap (measured 2026-12: modules ~8.6 KB, objects ~1.25 KB)
MODULES_MAX = 10 * 1024
OBJECTS_MAX = 2 * 1024


def probe(kind):
    r = run_micropython([ROOT / "boards" / "sim" / "bench_modbus.py", kind], interp="esp32",
                        heap=ESP32_HEAP)
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["detector", "valve"])
def test_slave_allocates_nothing_per_poll_or_read_and_fits_its_budget(kind):
    m = probe(kind)
    assert m["replies"] == 210  # every request of the measurement was answered
    assert m["idle_alloc"] == 0, m
    assert m["read_alloc"] == 0, m
    assert m["hold_alloc"] == 0, m
    assert m["modules"] <= MODULES_MAX, m
    assert m["objects"] <= OBJECTS_MAX, m
