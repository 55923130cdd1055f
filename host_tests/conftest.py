import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
SIMBOARD = ROOT / "boards" / "sim"
PORTABLE = ROOT / "host_tests" / "portable"

for p in (FIRMWARE, SIMBOARD, PORTABLE, ROOT / "tools"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# Hypothesis: no per-example deadlines (speed is measured in benchmarks, never asserted),
# and under CI a derandomized search, so a landing never depends on a lucky draw. Local
# runs keep exploring new examples; what they find becomes a pinned regression test.
from hypothesis import settings as _hsettings

_hsettings.register_profile("dev", deadline=None)
_hsettings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
_hsettings.load_profile("ci" if os.environ.get("CI") else "dev")

# ESP32 (no PSRAM) leaves roughly this much GC heap to a MicroPython application.
ESP32_HEAP = "112k"
# The devices do not fit ESP32_HEAP yet (issue 10, heapfit): whole-device runs on the
# ESP32-like interpreter are expected to fail there until they do.
NOT_FIT_YET = "device does not fit 112 KB yet: issue 10, heapfit"

from gasguard_tools import runtime as _rt

# Which MicroPython interpreters the suite runs firmware on:
#   "micropython": the pip build (64-bit, doubles, has ssl), from source;
#   "esp32": the ESP32-like 32-bit build (docs/runtime.md), from .mpy at ESP32_HEAP.
MICROPYTHONS = ("micropython", "esp32")
REQUIRE_ESP32 = bool(os.environ.get("CI")) or os.environ.get("GASGUARD_REQUIRE_ESP32_MPY") == "1"
_ESP32 = {}


def esp32_exe():
    """The ESP32-like interpreter, or None when this machine has none (and CI does not
    require it). Under CI a missing one fails the session's first user."""
    if "exe" not in _ESP32:
        exe = _rt.esp32_micropython()
        if exe is not None and not _rt.is_32bit(exe):
            pytest.fail("%s is not a 32-bit MicroPython (sys.maxsize != 2**31-1)" % exe)
        _ESP32["exe"] = exe
    exe = _ESP32["exe"]
    if exe is None and REQUIRE_ESP32:
        pytest.fail("the ESP32-like MicroPython interpreter is missing and CI requires it: "
                    + _rt.ESP32_HINT)
    return exe


def need_esp32():
    """Skip (or, under CI, fail) a test that needs the ESP32-like interpreter."""
    exe = esp32_exe()
    if exe is None:
        pytest.skip("no ESP32-like MicroPython interpreter: " + _rt.ESP32_HINT)
    return exe


def micropython_exe(interp="micropython"):
    if interp == "esp32":
        return need_esp32()
    exe = _rt.pip_micropython()
    if exe is None:
        pytest.fail("the micropython command is missing: run `make test`, which installs it")
    return exe


def micropath(*extra):
    parts = [str(p) for p in extra] + [str(FIRMWARE), str(SIMBOARD), str(PORTABLE), ".frozen"]
    return os.pathsep.join(parts)


def compiled_tree():
    """The firmware, sim board and portable tests precompiled to .mpy, as deployed.

    On the ESP32 the app runs from .mpy (or frozen) modules, so the constrained-heap
    runs use them too: compiling source on the device would cost heap the product
    never spends. Compiled once (build/mpy/, reused while the sources are unchanged)."""
    # the tests keep their asserts; the firmware and the board are compiled as deployed
    return _rt.compile_tree((("firmware", FIRMWARE), ("sim", SIMBOARD), ("portable", PORTABLE, ())))


def run_micropython(args, stdin=None, heap=None, timeout=120, extra_path=(), compiled=False,
                    interp="micropython"):
    """Run on a MicroPython. interp="esp32": the ESP32-like interpreter, from .mpy, at
    ESP32_HEAP unless another heap is given (skips when there is none, see need_esp32)."""
    cmd = [micropython_exe(interp)]
    if interp == "esp32":
        compiled = True
        heap = heap or ESP32_HEAP
    if heap:
        cmd += ["-X", "heapsize=" + heap]
    cmd += [str(a) for a in args]
    if compiled:
        path = os.pathsep.join([str(p) for p in extra_path] + [str(p) for p in compiled_tree()] + [".frozen"])
    else:
        path = micropath(*extra_path)
    env = dict(os.environ, MICROPYPATH=path)
    return subprocess.run(
        cmd, input=stdin, capture_output=True, timeout=timeout, env=env, cwd=str(ROOT)
    )


def run_esp32(args, **kw):
    return run_micropython(args, interp="esp32", **kw)


def pytest_addoption(parser):
    parser.addoption("--port", default=None,
                     help="serial port of a real board for the tests marked `hardware` "
                          "(same as GASGUARD_PORT)")


def pytest_terminal_summary(terminalreporter):
    if _ESP32.get("exe", "") is None:
        terminalreporter.write_line(
            "note: no ESP32-like MicroPython interpreter: its runs were skipped (differential "
            "tests compared CPython and the pip MicroPython only); " + _rt.ESP32_HINT,
            yellow=True)


def pytest_configure(config):
    port = config.getoption("--port")
    if port:
        os.environ["GASGUARD_PORT"] = port


@pytest.fixture
def mpy():
    return run_micropython


def run_cpython(args, stdin=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(FIRMWARE), str(SIMBOARD), str(PORTABLE)]))
    return subprocess.run(
        [sys.executable] + [str(a) for a in args], input=stdin, capture_output=True,
        timeout=timeout, env=env, cwd=str(ROOT),
    )


def run_both(driver, stdin, esp32_heap=ESP32_HEAP):
    """Run host_tests/drivers/<driver>.py on CPython and the pip MicroPython, and on the
    ESP32-like interpreter (from .mpy at ESP32_HEAP) when there is one; return the
    CPython and pip MicroPython stdouts. The ESP32-like output must equal CPython's
    byte for byte (asserted here, so every differential test covers all three).

    Fails the test if any interpreter exits non-zero.
    """
    path = ROOT / "host_tests" / "drivers" / (driver + ".py")
    a = run_cpython([path], stdin=stdin)
    assert a.returncode == 0, a.stderr.decode()
    b = run_micropython([path], stdin=stdin)
    assert b.returncode == 0, (b.stdout + b.stderr).decode()
    if esp32_exe() is not None:
        c = run_esp32([path], stdin=stdin, heap=esp32_heap)
        assert c.returncode == 0, "ESP32-like interpreter: " + (c.stdout + c.stderr).decode()[-3000:]
        assert c.stdout == a.stdout, "ESP32-like interpreter differs from CPython"
    return a.stdout, b.stdout
