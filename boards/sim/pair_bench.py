"""A button pairing on a booted device: its time and heap (docs/security.md#pairing).

    micropython pair_bench.py KIND TIER STORE_DIR air=IP:PORT   (STORE_DIR provisioned by heap_day.py)
    micropython pair_bench.py KIND TIER STORE_DIR alone

Boots the device as heap_day.py does (board main.py's assembly, reporting, identifier),
runs a minute, then pairs it through both windows with its peer: a real link of the other
role in a second process with its own heap (pair_peer.py, started by
gasguard_tools.bench_pairing when this prints {"at": "ready"}), as on two chips. The two
talk over the simulated ESP-NOW air between processes (netair.NetAir through the host's
AirRelay at air=, the slice-based clock of `gasguard sim`: one 100 ms loop turn per slice).
So this interpreter's heap holds the device and the harness only; the harness figure
(heap_day.Day) includes the NetAir. Prints one JSON line: the device's live heap after
collecting at every 100 ms loop turn before and during the pairing, how long the X25519
operations and the longest loop turns took (time.ticks_us on this interpreter), the
device's key (hex; bench_pairing compares it with the peer's) and link state. With "alone"
no peer and no relay (an in-process SimAir nobody else is on): the window ends unanswered
and the device shows the failed-pairing note (gasguard.pair_note).
host_tests/heap/test_interlock_pair_heap.py runs it on the ESP32-like interpreter.
"""

import gc
import json
import sys
import time

from binascii import hexlify

import heap_day
from heap_day import DET_MAC, VALVE_MAC, Day

STEP = 100


def _link(app, kind):
    if kind == "valve":
        return app.controller.link
    for s in app.detector.interlocks:
        if hasattr(s, "pair_button"):
            return s
    raise RuntimeError("no ESP-NOW link on this device")


def alone(app, kind, out, turn):
    """A pairing window nobody answers, opened by the device's button (its app tells the
    person: the failed-pairing note): the device's live heap while the window and the note
    run, whether the note was shown and released, what the link said, and the key kept."""
    link = _link(app, kind)
    old = link.key
    errors = app.error_count
    link.pair_button(False, app)
    peak = 0
    shown = False
    for _ in range((link.cfg["pair_window_ms"] + 30000) // STEP):  # window, the note, margin
        turn()
        shown = shown or "gasguard.pair_note" in sys.modules
        gc.collect()
        peak = max(peak, gc.mem_alloc() - heap_day._BASE)
    gc.collect()
    out["alone"] = {
        "live_peak": peak, "after": gc.mem_alloc() - heap_day._BASE, "note_shown": shown,
        "failed": [e.get("reason") for e in app.log.recent(8)
                   if e.get("event") == "link" and e.get("state") == "pair_failed"],
        "key_kept": link.key == old, "pairing": link.pairing, "new_errors": app.error_count - errors,
        "parked_loaded": [m for m in ("gasguard.link_pair", "gasguard.x25519", "gasguard.pair_note")
                          if m in sys.modules]}
    return out


class _NetAirOf:
    """The device's one NetAir radio where heap_day.Day asks its air for radio(mac)."""

    def __init__(self, net):
        self.net = net

    def radio(self, mac):
        if mac != self.net.radio.mac:
            raise ValueError("this NetAir is the other MAC's")
        return self.net.radio


def main():
    kind, tier, root = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "alone"
    valve = kind == "valve"
    net = None
    if mode != "alone":  # air=IP:PORT: the peer is in its own process, on the relay there
        from netair import NetAir

        host, port = mode[4:].rsplit(":", 1)
        net = NetAir((host, int(port)), VALVE_MAC if valve else DET_MAC, 1, 0)
        # heap_day.Day takes its air from simradio.SimAir when it is built: here that is
        # this NetAir (heap_day itself unchanged: its code is in every heap figure's harness)
        import simradio

        simradio.SimAir = lambda clock, seed, loss: _NetAirOf(net)
    # the NetAir is made before the Day: its code and socket are in the harness figure
    day = Day(kind, tier, root)
    app, board, clock = day.app, day.board, day.clock

    def turn(paired=False):
        clock.advance(STEP)
        if valve:
            board.step()
        t = time.ticks_us()
        app.poll()
        dt = time.ticks_diff(time.ticks_us(), t)
        day.broker.service()
        day.broker.published = []
        if paired:  # this slice is done: the peer's frames of it come in, then the next one
            net.barrier()
        return dt

    out = {"kind": kind, "tier": tier}
    longest = 0
    peak = 0
    # a minute of the device alone: link lost (the peer is not on the air yet: the relay
    # drops frames of a device that has not said hello), reporting up
    for _ in range(600):
        longest = max(longest, turn())
        gc.collect()
        peak = max(peak, gc.mem_alloc() - heap_day._BASE)
    out["before"] = {"live_peak": peak, "longest_turn_us": longest}
    if net is None:
        print(json.dumps(alone(app, kind, out, turn)))
        return

    print('{"at": "ready"}')  # bench_pairing starts the peer's process now
    net.hello()
    net.wait()  # both on the air: the relay's first slice
    link = _link(app, kind)
    old = link.key
    t = time.ticks_us()
    link.pair_button()  # loads the pairing code, makes the window's key pair
    out["press_us"] = time.ticks_diff(time.ticks_us(), t)
    gc.collect()
    out["window_open"] = gc.mem_alloc() - heap_day._BASE
    longest = 0
    peak = 0
    turns = (2 * link.cfg["pair_window_ms"] + 5000) // STEP  # pair_peer.py turns as many
    for _ in range(turns):
        longest = max(longest, turn(True))
        gc.collect()
        peak = max(peak, gc.mem_alloc() - heap_day._BASE)
    out["pairing"] = {"live_peak": peak, "longest_turn_us": longest}
    gc.collect()
    out["after"] = gc.mem_alloc() - heap_day._BASE
    net.bye()
    key = link.key
    out["key"] = hexlify(key).decode() if key else None  # bench_pairing: == the peer's?
    out["key_changed"] = key is not None and key != old
    out["link"] = link.link
    out["parked_loaded"] = [m for m in ("gasguard.link_pair", "gasguard.x25519", "gasguard.interlock_frame")
                            if m in sys.modules]
    out["radio"] = net.stats

    from gasguard import x25519  # the operations alone (the device's released copy is reloaded)

    k = bytes(range(32))
    t = time.ticks_us()
    pub = x25519.public(k)
    out["x25519_us"] = time.ticks_diff(time.ticks_us(), t)
    t = time.ticks_us()
    x25519.scalarmult(k, pub)
    out["x25519_shared_us"] = time.ticks_diff(time.ticks_us(), t)
    print(json.dumps(out))


main()
