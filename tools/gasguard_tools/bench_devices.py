"""Heap of each assembled device on the MicroPython unix port (source and .mpy, 112k heap)."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BOARDS, FIRMWARE
from .runtime import compile_tree, micropython_exe


def _compile(tmp):
    # plain bytecode (no -O3), as this table has always been measured
    return [str(d) for d in compile_tree((("firmware", FIRMWARE, ()), ("sim", BOARDS / "sim", ())),
                                         out=Path(tmp) / "mpy")]


def _run(argv, path, heap):
    return subprocess.run([micropython_exe(), "-X", "heapsize=" + heap] + argv, capture_output=True,
                          text=True, timeout=300,
                          env={"MICROPYPATH": ":".join(path + [".frozen"]), "PATH": "/usr/bin:/bin"})


def module_heap(mods, path, heap):
    """Heap held by importing exactly these modules (bytecode + module globals)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write("import gc\ngc.collect()\nb = gc.mem_alloc()\n")
        f.write("".join("import %s\n" % m for m in mods.split(",") if m))
        f.write("gc.collect()\nprint(gc.mem_alloc() - b)\n")
    try:
        r = _run([f.name], path, heap)
    finally:
        Path(f.name).unlink()
    return int(r.stdout.strip()) if r.returncode == 0 else None


def measure(kind, path, heap):
    state = tempfile.mkdtemp(prefix="gasguard-bench-")
    try:
        r = _run([str(BOARDS / "sim" / "bench_devices.py"), kind, state], path, heap)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    if r.returncode:
        return {"kind": kind, "error": (r.stdout + r.stderr).strip().splitlines()[-1:]}
    m = json.loads(r.stdout.strip().splitlines()[-1])
    mods = module_heap(m["modules"], path, "2m")
    if mods is not None:
        m["imports"] = mods
        m["device"] = m["total"] - mods
    return m


def main():
    src = [str(FIRMWARE), str(BOARDS / "sim")]
    print("Each device as `gasguard sim` assembles it (detector: mid tier with the ESP-NOW link;"
          " valve: controller with its link), run past warm-up, then 2000 loop turns of 10 ms"
          " with gc disabled. Heap figures are `gc.mem_alloc()` differences on the 64-bit unix"
          " port (pointers are 8 bytes; the ESP32's are 4, so objects there are smaller).\n")
    print("| device | loaded from | heap | its modules (bytecode + globals) | device objects | total | alloc per loop turn |")
    print("|---|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        mpy = _compile(tmp)
        for kind in ("detector", "valve"):
            for label, path, heap in (("source", src, "2m"), (".mpy", mpy, "2m"), (".mpy", mpy, "112k")):
                m = measure(kind, path, heap)
                if "error" in m:
                    print("| %s | %s | %s | %s | | | |" % (kind, label, heap, " ".join(m["error"])))
                else:
                    print("| %s | %s | %s | %d | %d | %d | %d B |" % (
                        kind, label, heap, m["imports"], m["device"], m["total"], m["alloc_per_turn"]))
    print("\nModules a detector loads: %s" % measure("detector", src, "2m").get("modules"))
    print("\nOn the ESP32 the modules load from .mpy into the heap, as here: the per-device, "
          "per-tier budget with what is resident and what is parked is in docs/heap-budget.md "
          "(section *heap* below, ESP32-like interpreter).")
