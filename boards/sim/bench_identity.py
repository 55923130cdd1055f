# Identity step costs (validation, sealing, ActiveId.poll()): run by
# gasguard_tools.bench_identity (`make bench`) on MicroPython and CPython.
#
#     micropython boards/sim/bench_identity.py FLASH_DIR
#
# Prints `key value` lines (gasguard_tools.benchkit); FLASH_DIR is emptied first.

import gc, sys
from gasguard.identifier import validate, make
from gasguard.canon import canon
from gasguard.identity import IdentityStore
from gasguard.active_id import ActiveId
from gasguard.id_platform import platform_ack
from gasguard.store import FileStore
from simboard import SimClock

from benchtime import diff, per_call, us

ID = make("88.118.8", "GD", "H", "240915", 123)
print("validate_us", per_call(lambda: validate(ID), 300))
root = sys.argv[1]
st = FileStore(root)
for nm in st.names():
    st.remove(nm)
ids = IdentityStore(st)
key = bytes(range(1, 33))
ids.provision({"id": ID, "model": "GG-200", "hw_rev": "1.2",
               "qr_template": "https://id.example.com/id/{id}"}, key)
ids.lock()
clock = SimClock()
sent = []
a = ActiveId(clock, ids, {"heartbeat_s": 60}, lambda k, p: sent.append(p) or True, "0.1.0",
             status_fn=lambda: {"alarm": 0, "fault": 0})
t0 = us(); a.poll(); print("poll_reg_us", diff(us(), t0))
print("reg_bytes", len(sent[-1]))
t0 = us(); a.on_message(platform_ack(key, sent[-1], 1726400002)); print("ack_verify_us", diff(us(), t0))
def hb():
    clock.advance(60000)
    a.poll()
print("poll_hb_us", per_call(hb, 50))
print("hb_bytes", len(sent[-1]))
print("poll_idle_us", per_call(a.poll, 1000))
gc.collect()
if hasattr(gc, "mem_alloc"):
    b = gc.mem_alloc(); clock.advance(60000); a.poll(); print("hb_heap_bytes", gc.mem_alloc() - b)
