"""DetectorApp (device facade, event log, boot count) with a stub detector, on both interpreters."""

import json

from ptest import tmpdir
from gasguard.store import FileStore
from service_stubs import Board, EventLog, _app, boot_mode, make


def ask(a, board, line):
    board.console.feed(line + "\n")
    for _ in range(20):
        a.poll()
    out = board.console.take_output().decode().strip()
    return out


def test_boot_count_and_event_log_survive_reboot():
    root = tmpdir("app1")
    a, board, store = make(root)
    assert a.boot_count == 1
    a.emit({"event": "alarm", "gas": "ch4", "level": 1, "state": "on"})
    a2, _, _ = make(root)
    assert a2.boot_count == 2
    evs = a2.events(10)
    kinds = [e["event"] for e in evs]
    assert kinds == ["boot", "alarm", "boot"], kinds
    assert [e["seq"] for e in evs] == [0, 1, 2]
    assert evs[1]["boot"] == 1 and evs[2]["boot"] == 2


def test_torn_event_log_tail_is_cut():
    root = tmpdir("app2")
    store = FileStore(root)
    log = EventLog(store)
    log.add({"event": "a"}, 0)
    log.add({"event": "b"}, 1)
    store.append("events.log", b"\xa5\x01\x30\x00garbage")
    log2 = EventLog(store)
    assert [e["event"] for e in log2.recent(5)] == ["a", "b"]
    assert log2.dropped_torn > 0 and log2.seq == 2


def test_event_log_stays_bounded():
    root = tmpdir("app3")
    store = FileStore(root)
    log = EventLog(store, ram=4, max_bytes=1024)
    for i in range(200):
        log.add({"event": "x", "i": i}, i)
    assert store.size("events.log") <= 1024
    p = log.persisted()
    assert p[-1]["i"] == 199 and len(p) > 4
    assert [e["i"] for e in log.recent(4)] == [196, 197, 198, 199]


def test_event_log_compaction_without_heap_does_not_stop_the_caller():
    """A compaction reads the whole log in one block; on a fragmented heap that is a
    MemoryError, which must be counted, not raised into the alarm path (the soak found it:
    Detector.step -> emit -> EventLog.add -> _compact -> store.read)."""
    d = tmpdir("app-nomem")

    class NoHeapForReads(FileStore):
        tight = False  # the boot read works; later, the heap is too fragmented for one

        def read(self, name):
            if self.tight:
                raise MemoryError("memory allocation failed, allocating 5632 bytes")
            return FileStore.read(self, name)

    store = NoHeapForReads(d)
    log = EventLog(store, ram=4, max_bytes=1024)
    store.tight = True
    for i in range(40):
        ev = log.add({"event": "fault", "code": "x", "state": "on", "n": i}, i)
        assert ev["n"] == i
    # add() and flush() never read the log (it is bounded by renaming, not by rewriting
    # it): a heap with no block for the whole file does not matter any more
    assert log.write_errors == 0 and 0 < store.size("events.log") <= 512
    assert [e["n"] for e in log.recent(2)] == [38, 39]  # and kept in the RAM ring


def test_status_over_the_console():
    a, board, store = make(tmpdir("app4"))
    r = ask(a, board, "STATUS?")
    assert r.startswith("OK "), r
    d = json.loads(r[3:])
    assert d["boot_count"] == 1 and d["reset_cause"] == "power_on"
    assert d["readings"]["ch4"]["raw_uv"] == 400000
    assert d["detector"] == {"alarm": {"ch4": 0, "co": 0}}
    assert a.detector.polls >= 20


def test_history_keeps_the_peak_per_period():
    a, board, store = make(tmpdir("app5"))
    ch4 = a.detector.channels[0]
    for v in (10, 500, 20):
        ch4.ppm_x10 = v
        a.poll()
        board.clock.advance(300)
    board.clock.advance(200)
    ch4.ppm_x10 = 0
    a.poll()
    h = a.history()
    assert h["points"] == 1 and h["ch4"] == [500] and h["co"] == [0]


def test_reboot_and_maintenance_flag():
    root = tmpdir("app6")
    a, board, store = make(root)
    a.reboot()
    a.poll()
    assert board.reboots == 1
    assert boot_mode(store) == "app"
    a.maintenance()
    a.poll()
    assert board.reboots == 2
    assert boot_mode(store) == "maintenance"
    assert boot_mode(store) == "app"  # consumed


def test_config_set_validates_persists_and_refuses_typos():
    root = tmpdir("app7")
    a, board, store = make(root, config={"detector": {"sample_period_ms": 1000}, "app": {}})
    e = None
    try:
        a.config_set("detector.sample_perod_ms", 5)
    except ValueError as x:
        e = x
    assert e is not None and "unknown key" in str(e)
    a.config_set("detector.sample_period_ms", 500)
    a2, _, _ = make(root, config={"detector": {"sample_period_ms": 1000}, "app": {}})
    assert a2.config["detector"]["sample_period_ms"] == 500


def test_calibration_needs_factory_mode_and_zero_first():
    a, board, store = make(tmpdir("app8"))
    board.button.set_input(1)  # pressed after boot: does not grant factory mode
    r = ask(a, board, "CAL SPAN ch4 5000")
    assert r.startswith("ERR E_FACTORY"), r
    a.service.factory = True
    r = ask(a, board, "CAL SPAN ch4 5000")
    assert r.startswith("ERR E_STATE"), r
    assert a._staged == {}


def test_button_held_at_boot_grants_factory_mode():
    board = Board()
    board.button.set_input(1)
    a, board, store = make(tmpdir("app10"), board=board)
    assert a.service.factory is True and a.service.factory_via == "button"


def test_button_factory_mode_times_out_after_15_min_idle():
    board = Board()
    board.button.set_input(1)
    a, board, store = make(tmpdir("app11"), board=board)
    board.button.set_input(0)
    for _ in range(16):  # 16 min of loop turns, no request
        board.clock.advance(60000)
        a.poll()
    assert a.service.factory is False
    assert ask(a, board, "CAL SPAN ch4 5000").startswith("ERR E_FACTORY")


def test_sink_failure_does_not_stop_the_loop():
    a, board, store = make(tmpdir("app9"))

    class Bad:
        def event(self, ev):
            raise OSError(5)

        def poll(self):
            raise RuntimeError("boom")

    a.sinks.append(Bad())
    a.pollers.append(Bad())
    a.emit({"event": "x"})
    a.poll()
    assert a.error_count == 2
    assert ask(a, board, "HELLO").startswith("OK ")


def test_module_constants():
    from gasguard import boot as appmod

    assert appmod.MAINT_NAME != appmod.CONFIG_NAME
