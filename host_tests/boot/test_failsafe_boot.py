"""Fail-safe boot (issue 11 item 1), as a property, through the boards' main.py as deployed.

Whatever the flash holds -- a record missing, torn, bit-flipped, garbage, sealed with a
future version, or CRC-valid with out-of-range or foreign content, for every record a
device keeps (config, calibration and its backup, identity, link keys and counters,
boot count, reporter counters, outbox, event log) -- the board's real main.py reaches
its main loop, samples its inputs, feeds the watchdog on every turn, and shows what it
refused: a fault code in `diag status` (status faults), the reason in status "refused"
and a fault event in the log.

Runs main.py with the ESP32 board doubles (host_tests/board_fakes) on the pip
MicroPython (hypothesis over the store), and the pinned issue reproduction on CPython,
the pip MicroPython and the ESP32-like 32-bit interpreter.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIRMWARE, PORTABLE, ROOT, SIMBOARD, need_esp32, run_micropython

FAKES = ROOT / "host_tests" / "board_fakes"
MAINS = {"detector": ROOT / "boards" / "esp32-detector" / "main.py",
         "valve": ROOT / "boards" / "esp32-valve" / "main.py"}
TURNS = 25
# The detector does not fit the ESP32's 112 KB yet (issue 10, heapfit): its ESP32-like run
# of the reproduction uses a larger heap until it does.
DETECTOR_HEAP = "512k"

from gasguard import calibration, identifier, interlock_keys, record, sensors  # noqa: E402
from gasguard.identity import IdentityStore  # noqa: E402
from gasguard.store import FileStore  # noqa: E402


def run_board(kind, root, interp="micropython", heap=None, turns=TURNS):
    """The board's main.py with /data at root/data on CPython, the pip MicroPython or the
    ESP32-like one (app from .mpy); returns (stdout+stderr, status line or None)."""
    args = [str(FAKES / "run_main.py"), str(root), str(turns), str(MAINS[kind])]
    if interp == "cpython":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(FAKES), str(FIRMWARE), str(SIMBOARD), str(PORTABLE)]))
        r = subprocess.run([sys.executable] + args, capture_output=True, timeout=60, env=env,
                           cwd=str(ROOT))
    else:
        r = run_micropython(args, heap=heap, timeout=60, extra_path=[FAKES], interp=interp)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    lines = [ln for ln in r.stdout.decode(errors="replace").splitlines() if ln.startswith("{")]
    return out, (json.loads(lines[-1]) if lines else None)


def assert_in_loop(out, stt, turns=TURNS):
    assert "stopped: watchdog test limit" in out, out
    assert stt is not None and stt["feeds"] == turns, out  # fed on every loop turn


def _seal_json(d, version=1):
    return record.seal(json.dumps(d).encode(), version)


CONFIGS = {
    "detector": {"detector": {"profile": "en", "tier": "high"}, "link": {"channel": 6},
                 "net": {"ssid": "x", "password": "y"},
                 "report": {"mqtt": {"host": "127.0.0.1", "port": 1}}},
    "valve": {"valve": {"tier": "M", "link": {"channel": 6}}, "net": {"ssid": "x", "password": "y"},
              "report": {"mqtt": {"host": "127.0.0.1", "port": 1}}},
}


def _golden(kind, root):
    """A provisioned, paired, calibrated device that has booted once: every record exists."""
    data = root / "data"
    data.mkdir(parents=True)
    store = FileStore(str(data))
    ids = IdentityStore(store)
    code = "GD" if kind == "detector" else "GV"
    dev_id = identifier.make("88.118.8", code, "M", "261129", 7)
    ids.provision({"id": dev_id, "model": "GG-1", "hw_rev": "1.0"}, bytes(range(1, 33)))
    ids.lock(dev_id)
    interlock_keys.provision(store, "D" if kind == "detector" else "V", bytes(range(32)),
                             b"\x02\x00\x00\x00\x00\x01")
    if kind == "detector":
        rec = calibration.CalibrationRecord()
        for gas, name in (("ch4", "mq4"), ("co", "ec_co")):
            m = sensors.from_config({"model": name})
            rec = rec.with_zero(m, m.clean_air_uv, 20260101, "factory")
            rec = rec.with_span(m, m.uv(m.range_ppm_x10 // 4), m.range_ppm_x10 // 4, 20260101, "factory")
        calibration.save(store, rec)
        store.write("calibration.bak", rec.encode())
    store.write("config.rec", _seal_json(CONFIGS[kind]))
    out, stt = run_board(kind, root)
    assert_in_loop(out, stt)
    assert stt["refused"] == [], stt
    files = {}
    for n in sorted(os.listdir(str(data))):
        if not n.startswith("."):
            files[n] = (data / n).read_bytes()
    return files


_GOLDEN = {}


def golden(kind, tmp_path_factory):
    if kind not in _GOLDEN:
        _GOLDEN[kind] = _golden(kind, tmp_path_factory.mktemp("golden-" + kind))
    return _GOLDEN[kind]


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                      st.floats(allow_nan=False), st.text(max_size=6))
json_any = st.recursive(json_leaf, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)), max_leaves=6)


def _leaves(d, path=()):
    if isinstance(d, dict) and d:
        for k, v in d.items():
            yield from _leaves(v, path + (k,))
    else:
        yield path


@st.composite
def damaged(draw, blob):
    """One record as the flash may hold it."""
    how = draw(st.sampled_from(["keep", "missing", "torn", "flip", "garbage", "future",
                                "foreign", "json_leaf"]))
    if how == "keep":
        return how, blob
    if how == "missing":
        return how, None
    if how == "torn":
        return how, blob[:draw(st.integers(0, max(0, len(blob) - 1)))]
    if how == "flip":
        b = bytearray(blob)
        if b:
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
        return how, bytes(b)
    if how == "garbage":
        return how, draw(st.binary(max_size=80))
    try:
        payload = record.unseal(blob)
    except record.RecordError:  # an append-only log: its first record
        payload = record.scan(blob)[0][0] if record.scan(blob)[0] else b""
    if how == "future":
        return how, record.seal(payload, draw(st.integers(2, 255)))
    if how == "foreign":  # CRC-valid, version 1, content from elsewhere
        return how, record.seal(json.dumps(draw(json_any)).encode())
    try:  # json_leaf: a valid record with one value replaced (out of range, wrong type)
        d = json.loads(payload)
    except ValueError:
        return how, record.seal(payload[: len(payload) // 2])
    if not isinstance(d, dict):
        return how, record.seal(json.dumps(draw(json_any)).encode())
    paths = list(_leaves(d))
    path = draw(st.sampled_from(paths)) if paths and paths != [()] else ("x",)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = draw(st.one_of(json_leaf, st.integers(-10**6, 10**6)))
    return how, record.seal(json.dumps(d).encode())


@st.composite
def flash(draw, files):
    names = sorted(files)
    out = {}
    for n in names:
        if n == "maint.flag":
            continue
        out[n] = draw(damaged(files[n]))
    return out


def _write(root, image):
    data = root / "data"
    if data.exists():
        shutil.rmtree(str(data))
    data.mkdir(parents=True)
    for n, (_how, blob) in image.items():
        if blob is not None:
            (data / n).write_bytes(blob)


def _check_shown(stt, image):
    """The refused config is shown in all three places, and nothing is shown for nothing."""
    faults = stt["faults"]
    shown = "config_invalid" in faults
    assert shown == any(r.startswith(("config.rec", "boot config", "defaults"))
                        for r in stt["refused"]), stt
    assert shown == ("config_invalid" in stt["fault_events"]), stt
    how = image.get("config.rec", ("missing", None))[0]
    if how in ("torn", "garbage", "future") and image["config.rec"][1]:
        assert shown, stt  # unreadable: always refused, never silently replaced
    if how == "keep":
        assert not shown, stt


def _detector_ran(stt):
    r = stt["readings"]
    assert r["ch4"]["raw_uv"] > 0  # sampled in the loop
    assert stt["kind"] == "detector"


@pytest.mark.parametrize("kind", ["detector", "valve"])
def test_any_store_contents_boot_into_the_loop_and_show_what_was_refused(kind, tmp_path_factory):
    files = golden(kind, tmp_path_factory)
    root = tmp_path_factory.mktemp("flash-" + kind)

    @settings(max_examples=int(os.environ.get("GG_FAILSAFE_EXAMPLES", "40")),
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(image=flash(files))
    def prop(image):
        _write(root, image)
        out, stt = run_board(kind, root)
        assert_in_loop(out, stt)
        _check_shown(stt, image)
        if kind == "detector":
            _detector_ran(stt)
        else:
            assert stt["kind"] == "valve" and stt["valve"] in ("open", "closed", "unknown"), stt
        # and again: the boot after such a boot is just as good (boot count, log rewritten)
        out, stt2 = run_board(kind, root, turns=5)
        assert_in_loop(out, stt2, 5)

    prop()


REPRO = {"detector": {"ch4_delay_s": 99999}}


@pytest.mark.parametrize("interp", ["cpython", "micropython", "esp32"])
def test_issue_reproduction_out_of_range_config_runs_with_a_config_fault(interp, tmp_path):
    """A CRC-valid config.rec with detector.ch4_delay_s 99999: before, DetectorApp raised
    ConfigError and main.py died before the loop. The ESP32-like interpreter runs at
    DETECTOR_HEAP: at 112k the detector does not fit yet (heap work in progress)."""
    if interp == "esp32":
        need_esp32()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "config.rec").write_bytes(_seal_json(REPRO))
    out, stt = run_board("detector", tmp_path, interp,
                         heap=DETECTOR_HEAP if interp == "esp32" else None)
    assert_in_loop(out, stt)
    assert "config_invalid" in stt["faults"] and "config_invalid" in stt["fault_events"]
    assert any("ch4_delay_s" in r for r in stt["refused"]), stt
    assert stt["profile"] == "cn" and stt["tier"] == "mid"  # the defaults
    _detector_ran(stt)


@pytest.mark.parametrize("interp", ["micropython", "esp32"])
def test_valve_with_refused_config_keeps_its_radio_decision_from_the_config_it_runs(interp, tmp_path):
    """Also on the ESP32-like interpreter at the ESP32's 112 KB: the valve fits."""
    if interp == "esp32":
        need_esp32()
    (tmp_path / "data").mkdir()
    bad = {"valve": {"tier": "L", "trip_pulse_ms": -5}}
    (tmp_path / "data" / "config.rec").write_bytes(_seal_json(bad))
    (tmp_path / "config.json").write_text(json.dumps({"valve": {"tier": "L"}}))
    out, stt = run_board("valve", tmp_path, interp)
    assert_in_loop(out, stt)
    assert "config_invalid" in stt["faults"] and stt["radio"] is False, stt
    assert stt["tier"] == "L"  # the boot config, not the refused record


def test_a_boot_config_the_board_cannot_run_falls_back_to_the_defaults(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"detector": {"ch4": {"sensor": {"model": "x"}}}}))
    out, stt = run_board("detector", tmp_path)
    assert_in_loop(out, stt)
    assert stt["faults"].count("config_invalid") == 1 and stt["refused"][0].startswith("boot config")


@pytest.mark.parametrize("interp", ["cpython", "micropython", "esp32"])
def test_a_stored_identity_section_the_firmware_refuses_is_shown_and_the_identifier_still_runs(
        interp, tmp_path):
    """A provisioned mid-tier detector whose config.rec (another firmware's) has
    identity.heartbeat_s 10: before, the identifier was silently never built (the device
    never registered again); now main.py shows identity_invalid and the identifier runs on
    its defaults, the rest of the stored config in use (docs/identity.md)."""
    if interp == "esp32":
        need_esp32()
    data = tmp_path / "data"
    data.mkdir()
    store = FileStore(str(data))
    ids = IdentityStore(store)
    dev_id = identifier.make("88.118.8", "GD", "M", "261129", 7)
    ids.provision({"id": dev_id, "model": "GG-1", "hw_rev": "1.0"}, bytes(range(1, 33)))
    ids.lock(dev_id)
    cfg = {"detector": {"profile": "en"}, "net": {"ssid": "x", "password": "y"},
           "report": {"mqtt": {"host": "127.0.0.1", "port": 1}}, "identity": {"heartbeat_s": 10}}
    (data / "config.rec").write_bytes(_seal_json(cfg))
    out, stt = run_board("detector", tmp_path, interp,
                         heap=DETECTOR_HEAP if interp == "esp32" else None)
    assert_in_loop(out, stt)
    assert "identity_invalid" in stt["faults"] and "identity_invalid" in stt["fault_events"], stt
    assert "config_invalid" not in stt["faults"] and stt["profile"] == "en", stt
    assert any("identity.heartbeat_s: 10 is outside 60..86400" in r for r in stt["refused"]), stt
    assert "ParkedActiveId" in stt["pollers"], stt  # it registers, on the defaults
    _detector_ran(stt)
