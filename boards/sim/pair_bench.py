"""A button pairing on a booted device: its time and heap (docs/security.md#pairing).

    micropython pair_bench.py KIND TIER STORE_DIR [alone]   (STORE_DIR provisioned by heap_day.py)

Boots the device as heap_day.py does (board main.py's assembly, reporting, identifier),
runs a minute, then pairs it with a peer (a real link of the other role, built in the same
heap after the device: its bytes are measured and reported apart) through both windows.
Prints one JSON line: the device's live heap after collecting at every 100 ms loop turn
before and during the pairing, the peer's bytes, how long the X25519 operations and the
longest loop turns took (time.ticks_us on this interpreter), and whether the pair was
made. With "alone" no peer is built: the window ends unanswered and the device shows the
failed-pairing note (gasguard.pair_note). host_tests/heap/test_interlock_pair_heap.py runs it on the ESP32-like interpreter.
"""

import gc
import json
import os
import sys
import time

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


def main():
    kind, tier, root = sys.argv[1:4]
    day = Day(kind, tier, root)
    app, board, clock = day.app, day.board, day.clock
    valve = kind == "valve"

    def turn(peer=None):
        clock.advance(STEP)
        if valve:
            board.step()
        t = time.ticks_us()
        app.poll()
        dt = time.ticks_diff(time.ticks_us(), t)
        if peer is not None:
            peer.poll()
        day.broker.service()
        day.broker.published = []
        return dt

    out = {"kind": kind, "tier": tier}
    longest = 0
    peak = 0
    for _ in range(600):  # a minute of the device alone: link lost (no partner), reporting up
        longest = max(longest, turn())
        gc.collect()
        peak = max(peak, gc.mem_alloc() - heap_day._BASE)
    out["before"] = {"live_peak": peak, "longest_turn_us": longest}
    if len(sys.argv) > 4 and sys.argv[4] == "alone":
        print(json.dumps(alone(app, kind, out, turn)))
        return

    gc.collect()
    a0 = gc.mem_alloc()
    from gasguard.store import FileStore

    proot = root + "/peer"
    try:
        os.mkdir(proot)
    except OSError:
        pass
    if valve:
        from gasguard.detector_link import DetectorLink

        peer = DetectorLink(day.air.radio(DET_MAC), clock, FileStore(proot), {})
    else:
        from gasguard.valve_link import ValveLink

        peer = ValveLink(day.air.radio(VALVE_MAC), clock, FileStore(proot), {},
                         on_close=lambda r: None, get_state=lambda: ("open", "none"))
    gc.collect()
    peer_bytes = gc.mem_alloc() - a0
    out["peer_bytes"] = peer_bytes

    link = _link(app, kind)
    old = link.key
    t = time.ticks_us()
    link.pair_button()  # loads the pairing code, makes the window's key pair
    out["press_us"] = time.ticks_diff(time.ticks_us(), t)
    peer.pair_button()
    gc.collect()
    out["window_open"] = gc.mem_alloc() - heap_day._BASE - peer_bytes
    longest = 0
    peak = 0
    turns = (2 * link.cfg["pair_window_ms"] + 5000) // STEP
    for _ in range(turns):
        longest = max(longest, turn(peer))
        gc.collect()
        peak = max(peak, gc.mem_alloc() - heap_day._BASE - peer_bytes)
    out["pairing"] = {"live_peak": peak, "longest_turn_us": longest}
    gc.collect()
    out["after"] = gc.mem_alloc() - heap_day._BASE - peer_bytes
    out["paired"] = link.key is not None and link.key != old and link.key == peer.key
    out["link"] = [link.link, peer.link]
    out["parked_loaded"] = [m for m in ("gasguard.link_pair", "gasguard.x25519", "gasguard.interlock_frame")
                            if m in sys.modules]

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
