"""The interlock link in the heap (issue 10, docs/heap-budget.md), on the ESP32-like
interpreter from .mpy as deployed:

- a close goes out, is executed by the valve and confirmed by its ACK when the heap is full
  at that moment (not one 16-byte block free) on both ends: the close path builds its frames
  in preallocated buffers and its only allocations (the tag's hash objects) fall back on the
  link's spare; also when the close takes the frame counter over a reservation (a flash write);
- the parked parts (config check, pairing, the reference codec) are not resident after the
  link is built, nor after a pairing, and a pairing still works in between.

The radios here allocate nothing either (as ESPNow.irecv, they hand out preallocated
buffers), so what is measured is the link's own."""

import json

from conftest import run_micropython

SCRIPT = r'''
import gc, json, sys
from gasguard.store import FileStore
from gasguard.interlock_keys import provision
from gasguard.detector_link import DetectorLink
from gasguard.valve_link import ValveLink
from simboard import SimClock
from heap_fill import HeapFill
from slot_radio import SlotRadio

DET = b"\x02\x00\x00\x00\x00\x01"
VAL = b"\x02\x00\x00\x00\x00\x02"
KEY = bytes(range(32))
root = sys.argv[1]
block = int(sys.argv[2])


def Radio(mac):
    return SlotRadio(mac, 26)  # frames are at least 26 bytes: views from there


clock = SimClock()
rd = Radio(DET)
rv = Radio(VAL)
rd.peer = rv
rv.peer = rd
closed = [0]
STATE = [("open", "none"), ("closed", "interlock")]


def on_close(req):
    closed[0] += 1


def get_state():
    return STATE[1 if closed[0] else 0]


sd = FileStore(root + "/d")
sv = FileStore(root + "/v")
provision(sd, "D", KEY, VAL)
provision(sv, "V", KEY, DET)
cfg = {"counter_block": block}
d = DetectorLink(rd, clock, sd, cfg)
v = ValveLink(rv, clock, sv, cfg, on_close=on_close, get_state=get_state)
out = {"resident": [m for m in sys.modules if m.startswith("gasguard.")]}


def turn(ms=100):
    clock.advance(ms)
    d.poll()
    v.poll()


for _ in range(50):  # heartbeats both ways: the link is up
    turn()
out["up"] = [d.link, v.link]
# the detector's next counter value is the last one of its reservation (the close takes
# it; "due": the one after it, so the close itself crosses into a new block)
last = 1 if sys.argv[3] != "due" else 0
while d.counter.next_value < d.counter.reserved - last:
    d.counter.take()
# the valve's too (its ACK)
while v.counter.next_value < v.counter.reserved - last:
    v.counter.take()
if sys.argv[3] == "ahead":
    turn(2000)  # a heartbeat each way: both reserve their next block ahead, with room
HEAP = HeapFill(600, 4096)
fill = HEAP.fill
unfill = HEAP.unfill
ERR = [None]


def full(step, fn):
    """fn() with the heap full (each end is its own device: each step fills it anew)."""
    free = fill()
    try:
        fn()
    except MemoryError as e:
        ERR[0] = step
        ERR.append(e)
    unfill()
    if len(ERR) > 1:
        sys.print_exception(ERR.pop())
    out["free_" + step] = free


writes = [d.counter.writes, v.counter.writes]
full("close", lambda: d.close("ch4_high"))
out["sent"] = rd.sent
d.poll()  # a loop turn of the detector with room again: its spare is back
full("valve", v.poll)  # CLOSE in: the valve trips, then ACKs
full("ack", d.poll)  # ACK in: confirmed
out.update({"err": ERR[0], "state": d.state, "closes": closed[0],
            "reserved": [d.counter.writes - writes[0], v.counter.writes - writes[1]],
            "det_store_errors": d.counter.store_errors, "valve_store_errors": v.counter.store_errors})
# the spare comes back on a later poll
turn()
out["spare"] = [d._spare is not None, v._spare is not None]
# a pairing loads its code and releases it afterwards
d.pair_button()
v.pair_button()
out["pairing_loaded"] = [m for m in sys.modules if m.startswith("gasguard.")]
for _ in range(700):
    turn()
out["paired"] = [d.key != KEY, d.key == v.key, d.link, v.link]
gc.collect()
out["after_pairing"] = [m for m in sys.modules if m.startswith("gasguard.")]
print(json.dumps(out))
'''

PARKED = ("gasguard.link_pair", "gasguard.x25519", "gasguard.interlock_keys", "gasguard.interlock_frame")


def _run(tmp_path, block, over):
    p = tmp_path / "ilk_heap.py"
    p.write_text(SCRIPT)
    for s in ("d", "v"):
        (tmp_path / s).mkdir(exist_ok=True)
    r = run_micropython([p, str(tmp_path), str(block), over], interp="esp32", heap="256k",
                        timeout=120)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    return json.loads(r.stdout.decode().splitlines()[-1])


def _check_close(res):
    assert res["up"] == ["up", "up"], res
    for step in ("close", "valve", "ack"):
        assert res["free_" + step] < 32, res  # nothing left, not even for a small object
    assert res["err"] is None, res
    assert res["state"] == "confirmed" and res["closes"] == 1, res


def test_a_close_under_a_full_heap_is_sent_executed_and_confirmed(tmp_path):
    res = _run(tmp_path, 1024, "within")
    _check_close(res)
    assert res["reserved"] == [0, 0], res
    assert res["det_store_errors"] == 0 and res["valve_store_errors"] == 0, res
    assert res["spare"] == [True, True], res
    for m in PARKED:
        assert m not in res["resident"], res
        assert m not in res["after_pairing"], res
    assert "gasguard.link_pair" in res["pairing_loaded"], res
    assert res["paired"] == [True, True, "up", "up"], res


def test_heartbeats_reserve_ahead_so_the_close_needs_no_flash_write(tmp_path):
    # both counters one value before the end of their reservation; a heartbeat each way
    # (with room) writes the next block ahead, so the close under a full heap needs none
    res = _run(tmp_path, 16, "ahead")
    _check_close(res)
    assert res["reserved"] == [0, 0], res
    assert res["det_store_errors"] == 0 and res["valve_store_errors"] == 0, res


def test_a_close_that_must_reserve_under_a_full_heap_still_goes_out(tmp_path):
    # no heartbeat in between: the close itself crosses the reservation. Its tag has the
    # spare; the reservation finds no room and is counted as a store error, not silent
    res = _run(tmp_path, 16, "due")
    _check_close(res)
    assert res["det_store_errors"] == 1 and res["reserved"][0] == 0, res
