"""Every portable test again, on the real MicroPython unix ports: the pip build (64-bit, from
source, default heap) and the ESP32-like 32-bit build (from .mpy at the ESP32's heap).

The pip build at 112k is not run: its 64-bit objects are twice the ESP32's, so it fails
where the chip would not and passes where 31-bit ints or single floats would fail."""

import pytest

from conftest import ESP32_HEAP, PORTABLE, ROOT, need_esp32, run_micropython

MODULES = sorted(p.stem for p in PORTABLE.glob("test_*.py"))
RUNS = {"pip": ("micropython", None), "esp32-like": ("esp32", ESP32_HEAP)}


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("module", MODULES)
def test_portable_module_on_micropython(module, run):
    # The ESP32-sized heap runs the modules precompiled to .mpy, as they are deployed.
    interp, heap = RUNS[run]
    r = run_micropython(
        [ROOT / "host_tests" / "mpyrun.py", module], heap=heap, timeout=300, compiled=bool(heap),
        interp=interp,
    )
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    assert "0 failed" in out, out


def test_every_firmware_module_imports_on_micropython():
    """Catches CPython-only constructs even in modules no portable test touches yet.

    All modules together (detector, valve, every tool-facing piece) are more than one
    device ever loads, so this runs at the default heap; each portable test module runs
    at the ESP32-sized heap above, and the per-device totals are in docs/benchmarks.md."""
    mods = []
    for p in sorted((ROOT / "firmware" / "gasguard").rglob("*.py")):
        rel = p.relative_to(ROOT / "firmware").with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        mods.append(name)
    script = "\n".join("import %s" % m for m in mods) + "\nprint('imported', %d)\n" % len(mods)
    r = run_micropython(["-c", script])
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "imported %d" % len(mods) in out


def test_the_esp32_like_interpreter_has_the_esp32_object_model():
    """The interpreter the ESP32-like runs use is what its name says: 31-bit small ints (a
    bigger int is a heap object), single-precision floats, the 2**30 ticks period, and a
    fixed heap of the size asked for."""
    need_esp32()
    script = ("import gc, sys, time\n"
              "gc.collect(); print(sys.maxsize, 16777217.0 == 16777216.0,"
              " time.ticks_add(0, -1) + 1, gc.mem_alloc() + gc.mem_free())\n")
    r = run_micropython(["-c", script], interp="esp32")
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    maxsize, single, period, heap = r.stdout.decode().split()
    assert int(maxsize) == 2 ** 31 - 1 and single == "True" and int(period) == 2 ** 30
    assert abs(int(heap) - 112000) <= 1024  # the unix port reads "k" as 1000
