"""Steady-state Detector.step() allocates no heap on MicroPython (gc.mem_alloc around many
steps), and every integer the detector keeps stays inside the ESP32 31-bit small-int range."""

import json

import pytest

from conftest import ESP32_HEAP, ROOT, run_cpython, run_micropython

SCRIPT = r'''
import gc, sys
import replay_detector as R

class Pin:
    """A pin whose value() does not allocate (SimPin.value(*args) builds a tuple per call,
    machine.Pin.value does not)."""

    def __init__(self):
        self.level = 0

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v


class Null:
    def write(self, s):
        pass

def ints(obj, seen, out, depth=0):
    # seen is a list compared by identity: an id() is a heap int on a 32-bit MicroPython
    if depth > 4:
        return
    for o in seen:
        if o is obj:
            return
    seen.append(obj)
    if isinstance(obj, bool):
        return
    if isinstance(obj, int):
        out.append(obj)
        return
    if isinstance(obj, (list, tuple)):
        for x in obj:
            ints(x, seen, out, depth + 1)
        return
    if isinstance(obj, dict):
        for x in obj.values():
            ints(x, seen, out, depth + 1)
        return
    d = getattr(obj, "__dict__", None)
    if d:
        for k in d:
            if k in ("rates", "clock", "board", "emit", "store", "cfg"):
                continue
            ints(d[k], seen, out, depth + 1)

def measure(ch4_x10, co_x10, steps, hush=False):
    hdr = {"device": "detector", "config": {"profile": "cn", "tier": "mid"}, "seed": 1}
    r = R.Runner(hdr, Null())
    o = r.det.outputs
    for pp in (o.green, o.yellow, o.red, o.buzzer):
        pp.pin = Pin()
    o.relay_pin = Pin()
    r.env.ch4_x10 = ch4_x10
    r.env.co_x10 = co_x10
    det = r.det
    clock = r.clock
    for _ in range(700):  # past warm-up and the alarm onsets (400 ppm CO: ~8 min)
        clock.advance(1000)
        det.poll()
    if hush:
        det.hush()
    gc.collect()
    a = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for _ in range(steps):
        clock.advance(1000)
        det.poll()
    b = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    vals = []
    ints(det, [], vals)
    big = [v for v in vals if v >= (1 << 30) or v < -(1 << 30)]
    return b - a, len(vals), big, det.alarm_level("ch4"), det.alarm_level("co")

out = {}
for name, ch4, co in (("clean", 0, 0), ("ch4_low_alarm", 70000, 0), ("co_dose", 0, 1500),
                      ("co_alarm", 0, 4000), ("ch4_high_alarm", 200000, 0)):
    out[name] = measure(ch4, co, int(sys.argv[1]))
out["ch4_low_hushed"] = measure(70000, 0, 200, True)
import json
print(json.dumps(out))
'''



@pytest.mark.parametrize("interp", ["micropython", "esp32"], ids=["pip", "esp32-like"])
def test_steady_state_step_allocates_nothing_on_micropython(tmp_path, interp):
    p = tmp_path / "alloc.py"
    p.write_text(SCRIPT)
    # the ESP32-like interpreter loads the modules as .mpy, as deployed, at the ESP32's 112 KB
    heap = ESP32_HEAP if interp == "esp32" else None
    r = run_micropython([p, "600"], interp=interp, heap=heap, extra_path=[ROOT / "boards" / "sim"])
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    res = json.loads(r.stdout.decode().splitlines()[-1])
    assert res["ch4_low_alarm"][3] == 1 and res["ch4_high_alarm"][3] == 2
    assert res["co_alarm"][4] == 1 and res["co_dose"][4] == 0
    for name, (alloc, nints, big, _l1, _l2) in res.items():
        assert alloc == 0, "%s: %d bytes allocated in 600 steps: %s" % (name, alloc, res)
        assert nints > 20 and big == [], (name, big)


def test_detector_integers_stay_in_31_bits_on_cpython(tmp_path):
    p = tmp_path / "alloc.py"
    p.write_text(SCRIPT)
    r = run_cpython([p, "2000"])
    assert r.returncode == 0, r.stderr.decode()
    res = json.loads(r.stdout.decode().splitlines()[-1])
    for name, (_alloc, nints, big, _l1, _l2) in res.items():
        assert nints > 20 and big == [], (name, big)
