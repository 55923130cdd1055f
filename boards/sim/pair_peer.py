"""The other chip of pair_bench's pairing, in its own MicroPython process and heap.

    micropython pair_peer.py DUT_KIND STORE_DIR RELAY_IP:PORT   (gasguard_tools.bench_pairing)

DUT_KIND is the device under test's kind: its peer is a real link of the other role (a
DetectorLink for a valve, a ValveLink for a detector) on an empty store, talking to the
device over the simulated ESP-NOW air between processes (netair.NetAir through the host's
AirRelay, the slice-based clock of `gasguard sim`: one 100 ms loop turn per slice, a frame
sent in one slice delivered in the next). It presses its button in the first slice, as the
device does, and turns for both windows. Its heap is not the device's: run it with room
(bench_pairing gives it 2 MB), so the device's 112 KB holds the device alone, as on two
chips. Prints one JSON line: its key (hex, null if none), its link state, the bytes of the
link it built and its radio counters.
"""

import gc
import json
import sys

from binascii import hexlify

from netair import NetAir
from simboard import SimClock

DET_MAC = b"\x02\x00\x00\x00\x00\x01"  # heap_day's
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
STEP = 100  # pair_bench.STEP, netair's slice


def main():
    kind, root, relay = sys.argv[1:4]
    host, port = relay.rsplit(":", 1)
    from gasguard.store import FileStore

    clock = SimClock()
    air = NetAir((host, int(port)), DET_MAC if kind == "valve" else VALVE_MAC, 1, 0)
    gc.collect()
    a0 = gc.mem_alloc()
    if kind == "valve":
        from gasguard.detector_link import DetectorLink

        peer = DetectorLink(air.radio, clock, FileStore(root), {})
    else:
        from gasguard.valve_link import ValveLink

        peer = ValveLink(air.radio, clock, FileStore(root), {},
                         on_close=lambda r: None, get_state=lambda: ("open", "none"))
    gc.collect()
    peer_bytes = gc.mem_alloc() - a0
    air.hello()
    air.wait()  # the relay starts the clock when the device is there too
    peer.pair_button()
    for _ in range((2 * peer.cfg["pair_window_ms"] + 5000) // STEP):  # pair_bench's turns
        clock.advance(STEP)
        peer.poll()
        air.barrier()
    key = peer.key
    print(json.dumps({"peer": kind, "key": hexlify(key).decode() if key else None,
                      "link": peer.link, "peer_bytes": peer_bytes, "radio": air.stats}))
    air.bye()


main()
