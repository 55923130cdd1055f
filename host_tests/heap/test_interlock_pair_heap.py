"""A button pairing on a booted device, on the ESP32-like interpreter from .mpy as deployed
(boards/sim/pair_bench.py via gasguard_tools.bench_pairing; docs/security.md#pairing,
docs/heap-budget.md): the X25519 key agreement and the rest of the pairing code are loaded
for the window only, the device's live heap during the pairing stays below its day's peak
(PEAK in test_heap_budget.py), and the valve pairs at its 112 KB heap. The peer (a real link
of the other role) runs in a second interpreter with its own heap (boards/sim/pair_peer.py),
over the simulated ESP-NOW air between processes (netair + AirRelay), as on two chips.
Times are published by `make bench` (bench_pairing), not asserted."""

import json
import shutil
import tempfile

import pytest

from conftest import need_esp32
from gasguard_tools import bench_heap, bench_pairing

# The device's live heap (harness subtracted) at its highest during a pairing, bytes; lower
# it when pairing needs less. Measured (docs/heap-budget.md): valve 97584, detector mid 118320
# (+17.5 KB valve, +16 KB mid: what is counted now, the harness no longer credits itself
# with gasguard.mqtt/store; the board files; heap-budget.md; then -1 KB valve, -2 KB mid:
# the console verbs released after each request, the boot's names primed). With the peer in
# its own process (2026-12-04, main f028153): valve 97552, mid 117232.
PAIRING_PEAK = {("valve", "M"): 96 * 1024, ("detector", "mid"): 116 * 1024}
# What the pairing adds while its window is open (the parked code and one key pair).
PAIRING_EXTRA = 11 * 1024


@pytest.fixture(scope="module")
def tree():
    exe = need_esp32()
    out = tempfile.mkdtemp(prefix="gasguard-heap-mpy-pair-")
    yield exe, bench_heap.compile_tree(out)
    shutil.rmtree(out, ignore_errors=True)


def _bench(exe, path, kind, tier, heap):
    res = bench_pairing.measure(exe, path, kind, tier, heap)
    print(kind, tier, json.dumps(res, sort_keys=True))
    return res


@pytest.mark.parametrize("kind,tier", sorted(PAIRING_PEAK))
def test_pairing_fits_beside_the_running_device(tree, kind, tier):
    exe, path = tree
    big = _bench(exe, path, kind, tier, 2 * 1024 * 1024)
    assert big["paired"] and big["link"] == ["up", "up"], big
    assert big["parked_loaded"] == [], big  # released once the pairing is made
    assert big["pairing"]["live_peak"] <= PAIRING_PEAK[(kind, tier)], big
    assert big["pairing"]["live_peak"] - big["before"]["live_peak"] <= PAIRING_EXTRA, big
    assert big["after"] - big["before"]["live_peak"] <= 1024, big  # nothing of it stays


# The valve at its 112 KB heap (plus the harness, measured at 2 MB: 30128 B with the NetAir),
# its peer in its own process at 2 MB: measured 2026-12-04 on main f028153, the same figures
# in every run: paired, link up/up, live peak before 86848 B, window open 96352 B, pairing
# live peak 97504 B, after 87616 B. It still pairs with 109056 B for the device (bisection
# within 512 B); at 108544 B the harness's NetAir receive (257 B) runs out first. Before,
# the bench's peer ran in the valve's interpreter and took its pairing's room (x25519, the
# frame tags) out of the valve's 112 KB: a non-strict xfail (3 passes, 4 failures, link
# lost at a pairing live peak of 100144 B on main 56215af).
def test_valve_pairs_at_112k(tree):
    exe, path = tree
    big = _bench(exe, path, "valve", "M", 2 * 1024 * 1024)
    small = _bench(exe, path, "valve", "M", bench_pairing.ESP32_HEAP + big["harness"])
    assert small["paired"] and small["link"] == ["up", "up"], small


# A window nobody answers (no peer built: nothing shares the device's heap): the device shows
# the failed-pairing note (gasguard.pair_note, loaded for it and released after). The valve at
# its 112 KB heap; the detector mid at 2 MB until it boots at 112 KB (heap-budget.md).
ALONE_HEAP = {("valve", "M"): 112 * 1024, ("detector", "mid"): 2 * 1024 * 1024}


@pytest.mark.parametrize("kind,tier", sorted(ALONE_HEAP))
def test_a_failed_pairing_is_shown_and_released_without_an_error(tree, kind, tier):
    exe, path = tree
    heap = ALONE_HEAP[(kind, tier)]
    if heap < 1024 * 1024:  # the chip's heap for the device, the harness on top
        heap += bench_pairing.measure(exe, path, kind, tier, 2 * 1024 * 1024, alone=True)["harness"]
    res = bench_pairing.measure(exe, path, kind, tier, heap, alone=True)
    print(kind, tier, heap, json.dumps(res, sort_keys=True))
    a = res["alone"]
    assert a["failed"] == ["no_answer"] and a["note_shown"], a  # the event, and the person told
    assert a["parked_loaded"] == [] and not a["pairing"], a  # window and note over, code released
    assert a["key_kept"] and a["new_errors"] == 0, a  # the old pairing stands; nothing failed
    assert a["live_peak"] <= PAIRING_PEAK[(kind, tier)], a
    assert a["after"] - res["before"]["live_peak"] <= 1024, (a, res["before"])  # nothing stays
