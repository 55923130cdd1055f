"""Button pairing on a booted device (X25519 key agreement, docs/security.md#pairing): time
and heap on the ESP32-like interpreter from .mpy as deployed (boards/sim/pair_bench.py).
Published by `make bench`; host_tests/heap/test_interlock_pair_heap.py asserts the heap
figures, never the times."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import BOARDS
from . import bench_heap

DEVICES = (("valve", "M"), ("detector", "mid"), ("detector", "high"))
ESP32_HEAP = 112 * 1024


def compile_tree(out):
    """bench_heap's tree, plus the peer link of the other role beside each deploy set (the
    bench's, not the device's)."""
    path = bench_heap.compile_tree(out)
    for d in Path(out).glob("deploy-*/gasguard"):
        for m in ("valve_link", "detector_link"):
            shutil.copy(str(Path(out) / "firmware" / "gasguard" / (m + ".mpy")), str(d))
    return path


def measure(exe, path, kind, tier, heap):
    """The bench's figures of one pairing, heap figures the device's own (harness and peer
    subtracted). heap: the interpreter's heap (bytes)."""
    store = tempfile.mkdtemp(prefix="gasguard-pairbench-")
    try:
        full = [str(Path(path[1]).parent / "firmware")] + path[1:]
        r = bench_heap._run(exe, full, 2 * 1024 * 1024, "provision", kind, tier, store)
        if r.returncode:
            raise RuntimeError("provisioning failed: " + (r.stdout + r.stderr)[-500:])
        r = subprocess.run([exe, "-X", "heapsize=%d" % heap, str(BOARDS / "sim" / "pair_bench.py"),
                            kind, tier, store], capture_output=True, text=True, timeout=300,
                           env={"MICROPYPATH": ":".join(bench_heap.device_path(path, kind, tier)),
                                "PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(store, ignore_errors=True)
    if r.returncode:
        raise RuntimeError("pair_bench failed: " + (r.stdout + r.stderr)[-2000:])
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    harness = lines[0]["alloc"]
    res = lines[-1]
    for k in ("before", "pairing"):
        res[k]["live_peak"] -= harness
    res["window_open"] -= harness
    res["after"] -= harness
    res["harness"] = harness
    return res


def main():
    exe = bench_heap.esp32_micropython()
    if exe is None:
        print("not measured: no ESP32-like interpreter")
        return
    out = tempfile.mkdtemp(prefix="gasguard-heap-mpy-pair-")
    try:
        path = compile_tree(out)
        print("One pairing, both windows, with a peer link; times from time.ticks_us on this host "
              "(the ESP32 at 240 MHz: 20-50x slower; another load on this host shows here too). Heap: the device's live bytes after "
              "collecting at every 100 ms loop turn.\n")
        print("| device | heap | X25519 op us | press us | longest turn us, alone / pairing "
              "| live peak B, alone / pairing / after | paired |")
        print("|---|---|---:|---:|---|---|---|")
        for kind, tier in DEVICES:
            big = measure(exe, path, kind, tier, 2 * 1024 * 1024)
            runs = [("2 MB", big)]
            if kind == "valve":  # the detectors do not boot at 112 KB yet (heap-budget.md)
                runs.append(("112 KB", measure(exe, path, kind, tier, ESP32_HEAP + big["harness"])))
            for name, r in runs:
                print("| %s %s | %s | %d | %d | %d / %d | %d / %d / %d | %s |" % (
                    kind, tier, name, r["x25519_us"], r["press_us"], r["before"]["longest_turn_us"],
                    r["pairing"]["longest_turn_us"], r["before"]["live_peak"], r["pairing"]["live_peak"],
                    r["after"], r["paired"]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
