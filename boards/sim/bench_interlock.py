# Heap of the interlock link ends (a DetectorLink, a ValveController with its ValveLink)
# and what 10 s of running both leaves live: run by gasguard_tools.bench_interlock
# (`make bench`) on the MicroPython unix port (a 2m heap: from source on 64-bit the two ends
# no longer fit 112k), host_tests/portable on the path.
#
#     micropython -X heapsize=2m boards/sim/bench_interlock.py
#
# Prints three integers: detector link bytes, valve controller bytes, bytes left after running.

import gc
import gasguard.valve, gasguard.espnow_link
from simboard import SimClock
from simradio import SimAir
from simvalve import SimValveBoard
from gasguard.store import FileStore
from gasguard.espnow_link import DetectorLink, provision
from gasguard.valve import ValveController
from ptest import tmpdir
clock = SimClock(); air = SimAir(clock)
rd = air.radio(b"\x02\0\0\0\0\x01"); rv = air.radio(b"\x02\0\0\0\0\x02")
sd = FileStore(tmpdir("bhd")); sv = FileStore(tmpdir("bhv"))
provision(sd, "D", bytes(32), rv.mac); provision(sv, "V", bytes(32), rd.mac)
vb = SimValveBoard(clock, rv)
gc.collect(); a = gc.mem_free()
d = DetectorLink(rd, clock, sd)
gc.collect(); b = gc.mem_free()
v = ValveController(vb, {}, sv)
gc.collect(); c = gc.mem_free()
for i in range(1000):
    clock.advance(10); vb.step(); v.poll(); d.poll()
gc.collect(); e = gc.mem_free()
print(a - b, b - c, c - e)
