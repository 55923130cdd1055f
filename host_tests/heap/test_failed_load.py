"""A load that fails is not held (gasguard.lazy.release; docs/heap-budget.md, "A failed load
is not held").

On MicroPython 1.28 an import that raises (a MemoryError while a module loads, the usual
failure of on-demand code on a full heap) is removed from sys.modules but stays reachable
through the slot it was removed from: the map removal keeps the value. Everything the
half-built module allocated stays in the heap until that slot is reused. The console, the
parked objects and the CFG checks release what they loaded after each use, failed or not;
release() clears such a slot too. Measured on the ESP32-like interpreter from .mpy, as on
the chip."""

import json
import shutil
import subprocess
import sys

from conftest import need_esp32
from gasguard import lazy
from gasguard_tools import bench_heap

FAILING = "BUF = bytearray(20000)\nraise MemoryError('memory allocation failed')\n"

SCRIPT = r'''
import gc, json, sys
from gasguard import lazy

def held():
    gc.collect()
    return gc.mem_alloc()

a = held()
try:
    from gasguard import failing
except MemoryError:
    pass
out = {"listed": "gasguard.failing" in sys.modules, "held": held() - a}
if sys.argv[1] == "release":
    lazy.release("failing")
out["after"] = held() - a
out["listed_after"] = "gasguard.failing" in sys.modules
print(json.dumps(out))
'''


def _run(exe, tmp_path, what):
    tree = tmp_path / "tree"
    if not tree.exists():
        bench_heap.compile_tree(str(tmp_path / "mpy"))
        shutil.copytree(str(tmp_path / "mpy" / "firmware"), str(tree))
        (tree / "gasguard" / "failing.py").write_text(FAILING)  # compiled where it loads
    script = tmp_path / "failed_load.py"
    script.write_text(SCRIPT)
    r = subprocess.run([exe, "-X", "heapsize=112k", str(script), what], capture_output=True,
                       text=True, env={"MICROPYPATH": str(tree)}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_a_failed_load_is_held_until_released(tmp_path):
    exe = need_esp32()
    kept = _run(exe, tmp_path, "keep")
    # the interpreter's behaviour this is about: gone from sys.modules, its heap still held
    assert not kept["listed"] and kept["held"] >= 20000 and kept["after"] >= 20000, kept
    freed = _run(exe, tmp_path, "release")
    assert freed["held"] >= 20000 and freed["after"] < 512 and not freed["listed_after"], freed


def test_release_of_a_module_never_loaded_leaves_nothing_behind():
    sys.modules.pop("gasguard.never_there", None)
    lazy.release("never_there")  # the slot clearing runs for it, and leaves no entry
    assert "gasguard.never_there" not in sys.modules
