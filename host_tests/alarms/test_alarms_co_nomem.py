"""The CO alarm's rate table without heap at boot (issue 11 item 1, issue 10).

Before: a MemoryError building the table (co_rates, 1764 bytes in one block) made the
detector refuse its config as `config_invalid` (a config that is fine), then the defaults
for the same reason, and run on the methane-only last fallback: no CO alarm, and no fault
that said why. Now (injected: the heap has no block of the table's size):
  - the table is retried after gc.collect(), then built coarse (1/2, 1/4 of its entries,
    an alarm never later): the detector runs on its own config, CO alarm included, and
    STATUS? shows fault `config_nomem` with the reason in `refused`;
  - a MemoryError that a collection cures is retried and nothing is refused (the error is
    in last_errors);
  - with no room for any CO table the config is refused as `config_nomem` (never
    `config_invalid`) and the detector runs on the next config that builds: methane only,
    the last resort, shown.
"""

import array as array_module
import json
import sys

import pytest

from gasguard import co_alarm, record
from gasguard.app import DetectorApp
from simboard import MemStore

from fixtures.detector import EC, MOS, DetectorBoard, pct_lel, run

REAL_ARRAY = array_module.array
FULL = 441  # entries of the full table (co_rates.TABLE_LEN)


@pytest.fixture(autouse=True)
def fresh_tables():
    co_alarm._TABLES.clear()  # (one per profile per process: a coarse one must not leak)
    yield
    co_alarm._TABLES.clear()


def no_block_for(monkeypatch, sizes, times=None):
    """From now on array('i') of one of `sizes` entries raises MemoryError as the ESP32's
    allocator does (`times` of them, or always); returns the list of failed sizes."""
    failed = []

    def array(tc, init=()):
        n = len(init) if hasattr(init, "__len__") else None
        if tc == "i" and n in sizes and (times is None or len(failed) < times):
            failed.append(n)
            raise MemoryError("memory allocation failed, allocating %d bytes" % (4 * n))
        return REAL_ARRAY(tc, init)

    monkeypatch.setattr(array_module, "array", array)
    # co_rates binds array when imported: loaded again (as on the device) with the injection
    monkeypatch.delitem(sys.modules, "gasguard.co_rates", raising=False)
    return failed


def boot(store):
    board = DetectorBoard()
    board.adc_ch4.source = MOS.uv(0)
    board.adc_co.source = EC.uv(0)
    return DetectorApp(board, store, {}, button_at_boot=True), board


def stored(cfg):
    store = MemStore()
    store.write("config.rec", record.seal(json.dumps(cfg).encode()))
    return store


def status(app, board):
    board.console.feed("STATUS?\n")
    for _ in range(5):
        app.poll()
    r = board.console.take_output().decode().strip()
    assert r.startswith("OK "), r
    return json.loads(r[3:])


def co_alarm_time_s(app, board, ppm, limit_s=1800):
    board.adc_co.source = EC.uv(ppm * 10)
    for t in range(limit_s):
        run(app, board, 1)
        if app.detector.co_alarm.active:
            return t
    return None


def test_no_block_for_the_table_runs_the_config_with_a_coarse_table_and_shows_config_nomem(
        monkeypatch):
    store = stored({"detector": {"profile": "ul", "tier": "high"}})
    failed = no_block_for(monkeypatch, (FULL,))
    app, board = boot(store)
    assert failed == [FULL, FULL]  # the full table, and again after gc.collect()
    assert app.config == {"detector": {"profile": "ul", "tier": "high"}}  # its own config
    assert app.detector.co_alarm.shift == 1 and len(app.detector.co_alarm.rates) == 221
    st = status(app, board)
    assert "config_nomem" in st["detector"]["faults"], st["detector"]
    assert st["refused"] == ["config.rec: MemoryError: no heap block for the CO rate table: "
                             "1/2 of its entries"], st["refused"]
    assert "config_invalid" not in st["detector"]["faults"]
    codes = [e["code"] for e in app.events(20) if e.get("event") == "fault"]
    assert codes.count("config_nomem") == 1 and "config_invalid" not in codes, codes
    # and the CO alarm alarms: UL 2034 at 400 ppm within 4..15 min, no later than the full table
    run(app, board, 60)  # warm-up
    t = co_alarm_time_s(app, board, 400)
    assert t is not None and 4 * 60 <= t <= 15 * 60, t
    # the methane alarm too
    board.adc_ch4.source = MOS.uv(pct_lel(30))
    run(app, board, 30)
    assert app.detector.status()["ch4"]["alarm"] == 2


def test_a_quarter_table_when_even_half_does_not_fit(monkeypatch):
    store = stored({"detector": {"profile": "en"}})
    no_block_for(monkeypatch, (FULL, 221))
    app, board = boot(store)
    assert app.detector.co_alarm.shift == 2 and app.faults_refused == ["config_nomem"]
    run(app, board, 60)
    t = co_alarm_time_s(app, board, 100, 3600)  # EN 50291: 100 ppm within 10..40 min
    assert t is not None and 10 * 60 <= t <= 40 * 60, t


def test_a_memory_error_a_collection_cures_is_retried_and_refuses_nothing(monkeypatch):
    store = stored({"detector": {"profile": "cn", "tier": "high"}})
    failed = no_block_for(monkeypatch, (FULL,), times=1)
    app, board = boot(store)
    assert failed == [FULL] and app.detector.co_alarm.shift == 0
    assert app.refused == [] and app.faults_refused == []
    run(app, board, 60)
    assert co_alarm_time_s(app, board, 400) is not None


def test_a_build_that_fails_twice_for_heap_is_config_nomem_and_the_next_config_runs():
    """Whatever part of the build finds no heap (here the whole detector, twice): retried
    after a collection, then refused as config_nomem, and the next config is built."""
    calls = []

    def factory(board, cfg, store, emit):
        from gasguard.detector import Detector

        calls.append(cfg)
        if len(calls) <= 2:
            raise MemoryError("memory allocation failed, allocating 1765 bytes")
        return Detector(board, cfg, store, emit)

    store = stored({"detector": {"profile": "en"}})
    board = DetectorBoard()
    app = DetectorApp(board, store, {}, detector_factory=factory)
    assert calls[:2] == [{"profile": "en"}, {"profile": "en"}] and calls[2] == {}
    assert app.faults_refused == ["config_nomem"]
    assert app.refused == ["config.rec: MemoryError: memory allocation failed, allocating 1765 bytes"]
    assert any("MemoryError" in e for e in app.errors)  # the first try, retried
    assert app.detector.cfg["profile"] == "cn" and app.detector.co_alarm is not None


def test_no_room_for_any_co_table_falls_back_to_methane_only_and_says_why(monkeypatch):
    """The last resort (a board with a CO input but no heap for any CO table)."""
    store = stored({"detector": {"profile": "cn"}})
    no_block_for(monkeypatch, (FULL, 221, 111))
    app, board = boot(store)
    assert app.detector.co_alarm is None and app.detector.cfg["tier"] == "low"
    st = status(app, board)
    assert "config_nomem" in st["detector"]["faults"], st["detector"]
    assert "config_invalid" not in st["detector"]["faults"]
    assert [r.split(":")[0] for r in st["refused"]] == ["config.rec", "defaults"], st["refused"]
    board.adc_ch4.source = MOS.uv(pct_lel(30))
    run(app, board, 90)
    assert app.detector.status()["ch4"]["alarm"] == 2
