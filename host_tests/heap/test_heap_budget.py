"""The heap budget of every device and tier (docs/heap-budget.md), on the ESP32-like 32-bit
interpreter from .mpy as deployed: heap figures there are deterministic, so a device whose
resident heap grows past its budget fails here. Also: parked code (gasguard.lazy) is really
released, and the parked active identifier decides exactly as the resident one."""

import json

import pytest

from conftest import ROOT, need_esp32
from gasguard_tools import bench_heap

# Resident heap after boot, bytes, per device and tier (the device's own objects and code,
# the board files and the firmware modules the harness also uses included; the harness's
# own code and objects subtracted: test_harness_is_not_credited_with_device_code). Lower these when a change frees heap; never raise them
# without a line in docs/heap-budget.md saying what the bytes buy.
BUDGET = {
    # -2 KB each: downlink commands parked (issue 15, heap-budget.md)
    # +1 KB each: fail-safe boot (issue 11 item 1); detector +1 KB: one fault table (heap-budget.md)
    # detector -5.5 KB: calibration boot/CAL-time only (heap-budget.md)
    # detector mid/high -1 KB: one device base, builder boot-only (heap-budget.md)
    # mid/high -4 KB, valve -4 KB: interlock pairing and link config parked (heap-budget.md)
    # -7.7 KB detector, -9.2 KB valve: one MQTT module, reporting config checks boot-only
    # detector -12 KB: one resident sensing module, its builders boot-only (heap-budget.md)
    # detector low -1 KB, valve -10 KB: the identity stack split by use (heap-budget.md)
    # detector -2.2 KB: the detector core as an orchestrator of small parts (heap-budget.md)
    # -3.6 KB each: one reporter module (protocol, telemetry ring, SNTP), one commands module
    # detector -1 KB: one filter class (heap-budget.md)
    # -1 KB each: outbox loading boot-only, the MQTT will built per CONNECT (heap-budget.md)
    # valve -0.9 KB, detector -0.7 KB: the SNTP exchange parked (heap-budget.md)
    # detector -3.3 KB, valve -1.8 KB: CAL facade and valve self-test per use, boot.py boot-only
    # detector -1 KB, valve -2 KB: the config checks (validate) boot-only (heap-budget.md)
    # -1 KB low, valve: console framing only resident; detector -1 KB: its construction
    # boot-only; mid +1 KB: pairing needs a person at both ends; high -1 KB: interlock
    # construction parked (heap-budget.md)
    # +15 KB low, +16 KB mid/high, +27 KB valve: what is counted now (the harness no longer
    # credits itself with gasguard.mqtt/store, nor the valve with validate/service_proto;
    # the board files, as deployed, are the device's; a 9 KB qstr pool), heap-budget.md
    # low -1 KB: no CO alarm code on a methane-only detector (89552 B, heap-budget.md)
    ("detector", "low"): 88 * 1024,
    ("detector", "mid"): 105 * 1024,
    ("detector", "high"): 105 * 1024,
    ("valve", "M"): 84 * 1024,
}
# Largest live heap at any checkpoint of the day, same units.
PEAK = {
    # +1 KB detector, +2 KB valve: fail-safe boot and the CFG validator loaded for a write
    # detector -1..3 KB: calibration loaded only for a CAL request (heap-budget.md)
    # -1 KB detector, -2 KB valve: one device base (heap-budget.md)
    # -4..8 KB: one MQTT module, reporting config checks boot-only (heap-budget.md)
    # detector -3 KB: one resident sensing module (heap-budget.md)
    # detector -1 KB: the identity stack split by use (heap-budget.md)
    # detector -1.3 KB: the detector core as an orchestrator (heap-budget.md)
    # -3.7 KB: one reporter module, one commands module (heap-budget.md)
    # detector -8..12 KB: the sensing builders released once the detector is built (heap-budget.md)
    # -0.6 KB each: outbox loading boot-only, the MQTT will built per CONNECT (heap-budget.md)
    # detector -1 KB: profiles gone once the detector is built (heap-budget.md)
    # -0.8 KB: the SNTP exchange parked (heap-budget.md)
    # -3 KB detector, -1 KB valve: CAL facade and valve self-test per use (heap-budget.md)
    # detector low -1 KB, valve -1 KB: validate boot-only (heap-budget.md)
    # detector -2 KB: the zero/span math loaded only when used (heap-budget.md)
    # low +1 KB: calibration plausibility checks; mid +1 KB: pairing, -4 KB: link; +1 KB
    # mid/high: the alarm path under a full heap, events guarded; valve -14 KB: a CFG write
    # releases its checks on return (heap-budget.md)
    # +14 KB low, +15 KB mid/high, +19 KB valve: what is counted now (the harness no longer
    # credits itself with gasguard.mqtt/store, nor the valve with validate/service_proto;
    # the board files, as deployed, are the device's; a 9 KB qstr pool), heap-budget.md
    # -1 KB mid/high: the identifier's config check boot-only, validate no longer loaded
    # with the parked identifier (heap-budget.md)
    # valve -1 KB: 95120 B re-measured after the identity section change
    # -3 KB low/valve, -4 KB mid/high: the console verbs released after each request, with
    # what CAL? loaded (heap-budget.md, "The console session holds nothing between requests")
    # low -1 KB: the boot's names primed (lazy.prime, heap-budget.md), re-measured
    # low -3 KB: the boot's builders one at a time, the fallback boot and the reporting
    # checks released before the next part loads (96912 B, the outage now; heap-budget.md)
    # low -3 KB, mid/high -5 KB: the outbox keeps an index in RAM and reads a message back
    # from its flash log when it is sent (93600 / 110944 B; heap-budget.md, "The outbox on
    # flash only")
    # -1 KB low, mid/high, -2 KB valve: the day's fake network drops the sockets the device
    # closed (harness), commands built on the first command, the identifier built in parts
    # (91168 / 108832 / 88608 B; heap-budget.md, "Boot transients of mid/high")
    ("detector", "low"): 91 * 1024,
    ("detector", "mid"): 108 * 1024,
    ("detector", "high"): 108 * 1024,
    ("valve", "M"): 88 * 1024,
}
# The goal of issue 10 (40 KB free at every moment at 112 KB, largest block >= 8 KB) is not
# reached yet by these: docs/heap-budget.md, "What is left".
GOAL_NOT_YET = {("detector", "low"), ("detector", "mid"), ("detector", "high"), ("valve", "M")}

@pytest.fixture(scope="module")
def exe():
    return need_esp32()  # skips, or fails under CI, without the ESP32-like interpreter


@pytest.fixture(scope="module")
def mpy_path(exe):
    # same folder name length as `make bench`: every module's __file__ string is on the heap
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="gasguard-heap-mpy-")
    yield bench_heap.compile_tree(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


_RESULTS = {}


def measured(exe, mpy_path, kind, tier):
    if (kind, tier) not in _RESULTS:
        _RESULTS[kind, tier] = bench_heap.measure(exe, mpy_path, kind, tier)
    return _RESULTS[kind, tier]


@pytest.mark.parametrize("kind,tier", bench_heap.DEVICES)
def test_resident_heap_within_budget(exe, mpy_path, kind, tier):
    r = measured(exe, mpy_path, kind, tier)
    assert r["boot"] <= BUDGET[kind, tier], (
        "%s %s: %d bytes resident after boot, budget %d: %s" % (kind, tier, r["boot"],
                                                                BUDGET[kind, tier], r["modules"]))
    assert r["peak_live"] <= PEAK[kind, tier], r["points"]
    # every part worked during the day: messages reached the broker, and every console
    # request was answered (the factory AUTH and the CFG write included) with the heap to spare
    assert r["published"] > 20, r
    assert r["console_failed"] == [], r["console_failed"]
    # and what is parked or boot-only is not resident at the end of it
    for m in ("identity", "identifier", "active_id", "profiles", "valve_cfg", "service_cmds",
              "service_read", "service_cal", "service_cfg", "service_factory",
              "calibration", "report_cfg", "sensors"):
        assert "gasguard." + m not in r["modules"], m


@pytest.mark.parametrize("kind,tier", bench_heap.DEVICES)
def test_harness_is_not_credited_with_device_code(exe, mpy_path, kind, tier):
    """The harness figure subtracted from every heap figure is the harness's only: its
    baseline is taken before any firmware module is loaded (before heap_day's own import),
    and every gasguard module loaded by the time the device boots is either counted as the
    device's (it is in the deploy set and the device keeps it) or in no deploy set at all
    (bench_heap.HARNESS_MODULES). The board files the chip keeps are the device's too."""
    from gasguard_tools.cmd_package import deploy_set

    r = measured(exe, mpy_path, kind, tier)
    assert r["pre_gasguard"] == 0, r
    loaded = set(r["harness_gasguard"])
    credited = set(r["shared"])
    assert loaded - credited == {"gasguard." + m for m in bench_heap.HARNESS_MODULES}, r
    assert credited <= loaded
    deployed = {f[:-3].replace("/__init__", "").replace("/", ".") for f in deploy_set(kind, tier)}
    for m in credited:
        assert m in deployed and m in r["modules"], m
    for m in bench_heap.HARNESS_MODULES:
        assert "gasguard." + m not in deployed, m
    # the reporting device keeps its MQTT client: the harness's copy is the device's
    assert "gasguard.mqtt" in credited and "gasguard.store" in credited
    # the chip's board files are counted: the HAL and pin map, Wi-Fi and ESP-NOW glue
    assert "esp32_hal" in r["board"] and "pins" in r["board"] and "esp32_net" in r["board"]
    assert ("esp32_radio" in r["board"]) == (tier != "low"), r["board"]


def test_harness_of_a_device_without_wifi_keeps_mqtt(exe, mpy_path):
    """A detector installed without Wi-Fi never loads the MQTT client (nor the reporter that
    uses it): the harness's broker-side copy stays the harness's."""
    path = bench_heap.device_path(mpy_path, "detector", "low")
    big, end, err = bench_heap.run_day(exe, path, "detector", "low/local", 2 * 1024 * 1024)
    assert end is not None, err
    h = big[0]
    assert "gasguard.mqtt" in h["gasguard"] and "gasguard.mqtt" not in h["shared"], h
    assert "gasguard.reporter" not in end["modules"], end["modules"]
    assert "esp32_net" not in end["board"] and "esp32_hal" in end["board"], end["board"]
    # the credit is the measured import cost of the modules credited, no more (the rest of
    # the harness point's figure: the point's own record and what its collection freed)
    assert h["credit"] == sum(h["shared_bytes"][m] for m in h["shared"]), h
    assert abs(h["alloc"] - h["harness"] - h["credit"]) < 1024, h


def test_a_day_with_a_console_request_not_answered_is_not_clean():
    day = {"error_count": 0, "errors": [], "console_failed": []}
    assert bench_heap._clean(day)
    day["console_failed"] = ["CFG app.history_period_s 120: ERR E_DEVICE MemoryError"]
    assert not bench_heap._clean(day)
    assert "CFG app.history_period_s" in bench_heap._errors(day)


def _devices_not_yet(not_yet, reason):
    """Every device, a strict xfail on those in not_yet: the mark must come off when one
    gets there."""
    return [pytest.param(k, t, marks=pytest.mark.xfail((k, t) in not_yet, strict=True,
                                                        reason=reason + ": docs/heap-budget.md"))
            for k, t in bench_heap.DEVICES]


@pytest.mark.parametrize("kind,tier", _devices_not_yet(
    GOAL_NOT_YET, "not yet within 112 KB with 40 KB free"))
def test_forty_kb_free_all_day_at_112k(exe, mpy_path, kind, tier):
    r = measured(exe, mpy_path, kind, tier)
    assert r["fits_112k"], r["error_112k"]
    assert r["min_free_112k"] >= bench_heap.KEEP_FREE, r
    assert r["min_block_112k"] >= bench_heap.MIN_BLOCK, r
    assert r["fits_72k"], r["error_72k"]


# The first milestone of that goal: the whole day ends at the ESP32's heap with no part
# failing (bench_heap.measure's fits_112k), whatever is left free. Not yet by the mid/high
# detectors (the smallest heap their day runs in: 122.3 KB on 8470936). The valve and the
# low detector get there since their main.py collects every 8 KB (docs/heap-budget.md,
# "Fragmentation: the valve collects every 8 KB"); the valve's largest block at 112 KB is
# 10.3 KB since its 7th name pool opens after boot ("Boot transients of mid/high").
# Since 2026-12-06 the day's config change is real (heap_day authenticates with the factory
# key; before, the detectors' CFG was refused for want of factory mode and nothing checked
# the answer): the low detector's CFG write does not fit at 112 KB yet (MemoryError loading
# the sensing checks; the console answers E_DEVICE and nothing changes), the rest of its day
# does (test_the_day_at_112k_fails_only_where_known).
DAY_NOT_YET_112K = {("detector", "mid"), ("detector", "high"), ("detector", "low")}
# The console requests known not to fit at 112 KB yet, by device: nothing else may fail.
KNOWN_GAPS_112K = {("detector", "low"): ("CFG detector.",)}


@pytest.mark.parametrize("kind,tier", _devices_not_yet(
    DAY_NOT_YET_112K, "the day does not end at 112 KB yet"))
def test_whole_day_ends_clean_at_112k(exe, mpy_path, kind, tier):
    r = measured(exe, mpy_path, kind, tier)
    assert r["fits_112k"], r["error_112k"]


@pytest.mark.parametrize("kind,tier", [d for d in bench_heap.DEVICES
                                       if d not in DAY_NOT_YET_112K or d in KNOWN_GAPS_112K])
def test_the_day_at_112k_fails_only_where_known(exe, mpy_path, kind, tier):
    """The day ends at 112 KB, no part counted an error, and every console request was
    answered OK but the known gaps (which answer ERR E_DEVICE and change nothing)."""
    r = measured(exe, mpy_path, kind, tier)
    assert r["ended_112k"] and not r["errors_112k"], r["error_112k"]
    known = KNOWN_GAPS_112K.get((kind, tier), ())
    for f in r["console_failed_112k"]:
        assert f.startswith(known) and "E_DEVICE MemoryError" in f, f


RELEASE_SCRIPT = r'''
import gc, json, sys
from gasguard.store import FileStore
from gasguard.lazy import ParkedIdentity
ids = ParkedIdentity(FileStore(sys.argv[1]))
out = {"status": ids.status(), "id": (ids.load() or {}).get("id")}
gc.collect()
a = gc.mem_alloc()
for _ in range(5):
    ids.status()
    ids.load()
gc.collect()
out["growth"] = gc.mem_alloc() - a
out["loaded"] = [m for m in ("gasguard.identity", "gasguard.identifier") if m in sys.modules]
from gasguard import lazy
gc.collect()
b = gc.mem_alloc()
from gasguard import identity
gc.collect()
out["module_heap"] = gc.mem_alloc() - b
del identity
out["freed"] = lazy.release("identity", "identifier")
print(json.dumps(out))
'''


def test_parked_identity_is_released_after_each_call(exe, mpy_path, tmp_path):
    import subprocess

    store = tmp_path / "store"
    store.mkdir()
    r = subprocess.run([exe, "-X", "heapsize=2m", str(ROOT / "boards/sim/heap_day.py"),
                        "provision", "valve", "M", str(store)],
                       env={"MICROPYPATH": ":".join(mpy_path)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    script = tmp_path / "rel.py"
    script.write_text(RELEASE_SCRIPT)
    r = subprocess.run([exe, "-X", "heapsize=112k", str(script), str(store)],
                       env={"MICROPYPATH": ":".join(mpy_path)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["status"] == "locked" and out["id"].startswith("88.")
    assert out["loaded"] == []  # nothing of the identity code stays between calls
    assert out["growth"] <= 64, out  # five more loads leave nothing behind
    # (the identity module is the small read side since the identity stack was split: ~2.3 KB)
    assert out["module_heap"] > 1500 and out["freed"] >= out["module_heap"] - 256, out


def _active_id_run(parked, tmp):
    """Registration, an acknowledgement, heartbeats and a remote read through the real
    Reporter on the strict fake network; returns what reached the broker."""
    from gasguard import devices
    from gasguard.active_id import ActiveId
    from gasguard.id_platform import platform_ack, platform_cmd, platform_open
    from gasguard.identity import IdentityStore
    from gasguard.lazy import ParkedIdentity
    from gasguard.reporter import Reporter
    from gasguard.store import FileStore
    from reporting_fakes import AutoBroker, FakeNet, publish_packet
    from simboard import SimClock

    dev = "88.118.8/GDH.240915.00123F"
    key = bytes(range(1, 33))
    store = FileStore(str(tmp))
    IdentityStore(store).provision({"id": dev, "model": "GG-200", "hw_rev": "1.2"}, key)
    IdentityStore(store).lock()
    clock = SimClock()
    net = FakeNet()
    cfg = {"base": "gg", "commands": False,
           "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}
    ids = ParkedIdentity(store) if parked else IdentityStore(store)
    rep = Reporter(clock, store, ids.identity_info("0.1.0"), cfg, net, rand=lambda n: 0)
    rng = lambda n: bytes(n)  # noqa: E731

    class App:
        pollers = []

    App.clock = clock
    if parked:
        act = devices.attach_active_id(App, rep, ids, {"identity": {"heartbeat_s": 60}}, rng=rng)
    else:
        act = ActiveId(clock, ids, {"heartbeat_s": 60}, rep.identity_send, "0.1.0", rng=rng)
        rep.attach_identity(act.on_message)
    b = AutoBroker(net)

    def run(ms, step=10):
        for _ in range(ms // step):
            act.poll()
            rep.poll()
            b.service()
            clock.advance(step)

    up = "gg/" + dev + "/identity"
    down = "gg/" + dev + "/identity_down"
    run(500)
    reg = [p for t, p, q, r, d in b.published if t == up][0]
    net.last.feed(publish_packet(down, platform_ack(key, reg, 1726400002), 0))
    run(200)
    run(130000, 500)
    net.last.feed(publish_packet(down, platform_cmd(key, dev, 1, "get_id"), 0))
    run(300)
    msgs = [platform_open(key, p) for t, p, q, r, d in b.published if t == up]
    return msgs, act.registered, dict(act.counters)


def test_parked_active_id_decides_as_the_resident_one(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    direct = _active_id_run(False, tmp_path / "a")
    parked = _active_id_run(True, tmp_path / "b")
    assert [m["t"] for m in direct[0]].count("hb") >= 2
    assert direct[1] is True and direct[2]["cmds"] == 1
    assert parked == direct
