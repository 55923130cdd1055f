"""Identity benchmark: validation, message sealing and ActiveId.poll() cost on MicroPython.

What matters on the device: ActiveId.poll() runs in the same loop as the alarm path, so
the cost of one registration/heartbeat step (canonical encoding + HMAC-SHA256) bounds how
long it can hold the loop. Measured on the MicroPython unix port (x86; an ESP32 at 240 MHz
is roughly 20-50x slower) and on CPython, plus the heap one step allocates.
"""


from .benchkit import compare_table

SCRIPT = r'''
import gc, sys, time
from gasguard.identifier import validate, make
from gasguard.canon import canon
from gasguard.identity import IdentityStore
from gasguard.active_id import ActiveId
from gasguard.id_platform import platform_ack
from gasguard.store import FileStore
from simboard import SimClock

try:
    us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    us = lambda: int(time.perf_counter() * 1000000)
    diff = lambda a, b: a - b

def per_call(fn, n):
    t0 = us()
    for _ in range(n):
        fn()
    return diff(us(), t0) // n

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
'''

ROWS = [
    ("validate_us", "validate() one identifier", "µs"),
    ("poll_reg_us", "poll() building + sealing a registration (incl. one seq reservation write)", "µs"),
    ("ack_verify_us", "on_message() verifying an acknowledgement (incl. flash write of the flag)", "µs"),
    ("poll_hb_us", "poll() sending a heartbeat (mean)", "µs"),
    ("poll_idle_us", "poll() with nothing due (mean)", "µs"),
    ("reg_bytes", "registration message size", "bytes"),
    ("hb_bytes", "heartbeat message size", "bytes"),
    ("hb_heap_bytes", "heap allocated by one heartbeat step (MicroPython)", "bytes"),
]


def main():
    compare_table("Identity (active identifier step cost)", ROWS, SCRIPT, ["{tmp}/flash"], timeout=120)


if __name__ == "__main__":
    main()
