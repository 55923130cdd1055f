"""Every portable test again, on the real MicroPython unix port, at two heap sizes."""

import pytest

from conftest import ESP32_HEAP, PORTABLE, ROOT, run_micropython

MODULES = sorted(p.stem for p in PORTABLE.glob("test_*.py"))


@pytest.mark.parametrize("heap", [None, ESP32_HEAP], ids=["heap-default", "heap-esp32"])
@pytest.mark.parametrize("module", MODULES)
def test_portable_module_on_micropython(module, heap):
    # The ESP32-sized heap runs the modules precompiled to .mpy, as they are deployed.
    r = run_micropython(
        [ROOT / "host_tests" / "mpyrun.py", module], heap=heap, timeout=300, compiled=bool(heap)
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
