"""Heap of the assembled devices on MicroPython: run by gasguard_tools.bench_devices.

    micropython boards/sim/bench_devices.py detector|valve STATE_DIR

Prints one JSON line: heap used by the imported modules, by the built device, and the
bytes allocated per loop turn in steady state (gc disabled while measuring).
"""

import gc
import json
import sys

gc.collect()
base = gc.mem_alloc()
kind = sys.argv[1]
root = sys.argv[2]

from gasguard.store import FileStore  # noqa: E402
from simboard import SimClock, SimConsole  # noqa: E402

if kind == "detector":
    from gasguard.app import DetectorApp
    from gasguard.devices import attach_interlock
    from gasguard.interlock_keys import provision
    from simradio import SimAir
    from virtual_device import VirtualBoard
else:
    from gasguard.valve_app import ValveApp
    from gasguard.interlock_keys import provision
    from simradio import SimAir
    from simvalve import SimValveBoard
gc.collect()
after_import = gc.mem_alloc()

clock = SimClock()
air = SimAir(clock, 1, 0)
store = FileStore(root)
if kind == "detector":
    provision(store, "D", bytes(range(32)), b"\x02\x00\x00\x00\x00\x02")
    board = VirtualBoard(clock, SimConsole(), 0.0, "power_on", False)
    app = DetectorApp(board, store, {"detector": {"profile": "cn", "tier": "mid"}})
    attach_interlock(app, air.radio(b"\x02\x00\x00\x00\x00\x01"), store, {})
    turn = app.poll_core
else:
    provision(store, "V", bytes(range(32)), b"\x02\x00\x00\x00\x00\x01")
    board = SimValveBoard(clock, air.radio(b"\x02\x00\x00\x00\x00\x02"))
    app = ValveApp(board, store, {})

    def turn():
        board.step()
        app.poll()

# run past warm-up and link set-up, then measure steady state
for _ in range(40000):
    clock.advance(10)
    turn()
gc.collect()
built = gc.mem_alloc()
N = 2000
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
for _ in range(N):
    clock.advance(10)
    turn()
a1 = gc.mem_alloc()
gc.enable()
print(json.dumps({"kind": kind, "imports": after_import - base, "device": built - after_import,
                  "total": built - base, "turns": N, "alloc_per_turn": (a1 - a0) // N,
                  "free": gc.mem_free(),
                  "modules": ",".join(sorted(m for m in sys.modules if m.startswith("gasguard")))}))
