# Cost per event of reporting (Reporter.event(), the outbox, poll() offline) and the sizes
# of its messages and records: run by gasguard_tools.bench_reporting (`make bench`) on
# MicroPython and CPython.
#
#     micropython boards/sim/bench_reporting.py FLASH_DIR
#
# Prints `key value` lines (integers).

import gc, sys
from gasguard.outbox import Outbox
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from gasguard.mqtt import packet
from simboard import SimClock
root = sys.argv[1]
from benchtime import diff as dus, us
DEV = "88.118.8/GDH.240915.00123F"
ev = {"event": "alarm", "gas": "ch4", "level": 2, "state": "on", "t": 1234}
r = Reporter(SimClock(), FileStore(root + "/a"), {"device_id": DEV, "fw": "0.1.0", "tier": "H",
             "kind": "detector"}, {"commands": False}, None)
N = 200
te = 0
tf = 0
for i in range(N):
    t0 = us()
    r.event(ev)
    te += dus(us(), t0)
    t0 = us()
    r.flush()
    tf += dus(us(), t0)
    if len(r.outbox) > 30:
        for k in r.outbox.keys():
            r.outbox.ack(k[0], k[1])
print("event_us", te // N)
print("flush_us", tf // N)
msg = bytes(r.outbox.message(r.outbox.entries[-1])) if r.outbox.entries else b""
if not msg:
    r.event(ev)
    msg = bytes(r.outbox.message(r.outbox.entries[-1]))
print("message_bytes", len(msg))
from gasguard.outbox import _rec
rec = _rec(b"M", "<IIBB", 1, 1, 1, 0, msg)
print("record_bytes", len(rec))
print("ack_record_bytes", 17)
topic = ("gasguard/" + DEV + "/event").encode()
print("publish_bytes", len(packet(0x32, bytes([0, len(topic)]) + topic + b"\x00\x01" + msg)))
ob = Outbox(FileStore(root + "/b"), max_bytes=65536, reserve_bytes=0)
t0 = us()
for i in range(N):
    ob.append(1, i + 1, 1, 0, msg)
print("append_us", dus(us(), t0) // N)
t0 = us()
for i in range(N):
    ob.ack(1, i + 1)
print("ack_us", dus(us(), t0) // N)
r.telemetry({"ch4_ppm_x10": 1234, "co_ppm_x10": 15, "supply_mv": 5010})
print("telemetry_bytes", len(r.ring[0]) + len(',"dropped":0'))
t0 = us()
for i in range(N):
    r.poll()
print("poll_offline_us", dus(us(), t0) // N)
gc.collect()
