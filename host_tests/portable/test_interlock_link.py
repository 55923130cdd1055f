"""The ESP-NOW interlock link end to end on the simulated air, on both interpreters."""

from ptest import raises, tmpdir

from gasguard import interlock_frame as F
from gasguard.espnow_link import DetectorLink, FrameCounter, ValveLink, link_config, load_pairing, provision
from gasguard.store import FileStore
from gasguard.validate import ConfigError
from interlock_rig import DET_MAC, KEY, VALVE_MAC, InterlockRig
from simboard import SimClock
from simradio import SimAir


def _rig(tag, **kw):
    return InterlockRig(tmpdir("ilk-" + tag), stub_valve=True, **kw)


def test_link_comes_up_and_close_is_acknowledged():
    rig = _rig("up")
    rig.run(3000)
    assert rig.det.link == "up" and rig.valve.link.link == "up"
    assert rig.det.fault is None
    rig.det.close("ch4_high")
    assert rig.det.state == "closing"
    assert rig.run_until(lambda: rig.det.state == "confirmed", 2000) is not None
    assert not rig.board.is_open
    assert rig.valve.state == "closed" and rig.valve.cause == "interlock"
    ev = rig.valve_events()
    assert ev[-1] == {"event": "valve", "state": "closed", "cause": "interlock", "source": "ch4"}
    # idempotent: more close() calls send nothing new
    sent = rig.det.sent
    rig.det.close("ch4_high")
    rig.det.close("co")
    assert rig.det.sent == sent and rig.det.state == "confirmed"


def test_close_with_heavy_loss_still_closes():
    rig = _rig("loss", seed=7, loss_pct=30, dup_pct=10, delay_ms=(1, 30), reorder_pct=10)
    rig.run(6000)
    rig.det.close("co")
    assert rig.run_until(lambda: not rig.board.is_open, 20000) is not None
    assert rig.run_until(lambda: rig.det.state == "confirmed", 20000) is not None
    assert rig.valve.link.closes_executed == 1  # duplicates and retries executed once


def test_manual_reset_is_reported_and_detector_can_close_again():
    rig = _rig("reset")
    rig.run(3000)
    rig.det.close("ch4_high")
    rig.run(3000)
    assert not rig.board.is_open
    assert rig.board.manual_reset()
    rig.run(5000)
    assert rig.valve.state == "open"
    assert rig.det.valve_state == "open" and rig.det.state == "idle"
    rig.det.close("ch4_high")
    rig.run(3000)
    assert not rig.board.is_open and rig.valve.link.closes_executed == 2


def test_replayed_and_forged_frames_change_nothing():
    rig = _rig("replay")
    rig.run(3000)
    rig.det.close("ch4_high")
    rig.run(3000)
    rig.board.manual_reset()
    rig.run(3000)
    assert rig.board.is_open
    recorded = [(s, d, b) for (s, d, b) in rig.air.log if s == DET_MAC]
    before = dict(rig.valve.link.rejected)
    for s, d, b in recorded:
        rig.air.inject(s, d, b)
    # forgeries: right MAC, wrong key; and an "open" nobody can sign
    rig.air.inject(DET_MAC, VALVE_MAC, F.close(bytes(32), 900, 900, 900, 1))
    rig.air.inject(b"\x02\x00\x00\x00\x00\x09", VALVE_MAC, F.close(KEY, 901, 901, 901, 1))
    rig.run(3000)
    assert rig.board.is_open and rig.valve.state == "open"
    rej = rig.valve.link.rejected
    assert rej["replay"] - before["replay"] == len(recorded)
    assert rej["bad_tag"] == before["bad_tag"] + 1
    assert rej["foreign"] == before["foreign"] + 1


def test_replay_after_valve_reboot_is_stale_not_accepted():
    rig = _rig("reboot")
    rig.run(3000)
    rig.det.close("ch4_high")
    rig.run(3000)
    rig.board.manual_reset()
    rig.run(1000)
    recorded = [(s, d, b) for (s, d, b) in rig.air.log if s == DET_MAC]
    rig.power_detector(False)  # the detector is off: only recordings are heard
    rig.reboot_valve()
    for s, d, b in recorded:
        rig.air.inject(s, d, b)
    rig.run(1000)
    assert rig.board.is_open
    assert rig.valve.link.rejected["stale"] >= 1
    assert rig.valve.link.closes_executed == 0


def test_counter_survives_reboot_and_writes_are_rare():
    root = tmpdir("ctr")
    store = FileStore(root)
    c = FrameCounter(store, KEY, 16)
    got = [c.take() for _ in range(40)]
    assert got == list(range(1, 41))
    assert c.writes == 3  # boot + two more blocks
    c2 = FrameCounter(FileStore(root), KEY, 16)
    assert c2.take() > 40 and c2.floor > 40
    # another key starts its own count
    c3 = FrameCounter(FileStore(root), bytes(32), 16)
    assert c3.take() == 1


def test_button_pairing():
    rig = _rig("pair", paired=False, keep_log=False)
    assert rig.det.fault == "interlock_unpaired"
    rig.det.close("ch4_high")
    assert rig.det.state == "failed"
    rig.det.pair_button()
    rig.valve.pair_button()
    rig.run(65000)  # both commit once their window (60 s) heard no second offer
    assert rig.det.key is not None and rig.det.key == rig.valve.link.key
    assert load_pairing(rig.det_store)[1] == VALVE_MAC
    assert load_pairing(rig.valve_store)[1] == DET_MAC
    assert rig.det.link == "up" and rig.valve.link.link == "up"
    rig.det.close("co")
    rig.run(3000)
    assert not rig.board.is_open


def test_pairing_frames_outside_a_window_are_rejected():
    rig = _rig("nopair")
    rig.run(1000)
    rig.air.inject(b"\x02\x00\x00\x00\x00\x07", VALVE_MAC, F.pair_request(bytes(16), bytes(32)))
    rig.run(500)
    assert rig.valve.link.rejected["pairing_closed"] == 1
    assert rig.valve.link.key == KEY


def test_provision_validation():
    store = FileStore(tmpdir("prov"))
    raises(ValueError, provision, store, "X", KEY, DET_MAC)
    raises(ValueError, provision, store, "D", b"short", DET_MAC)
    raises(ValueError, provision, store, "D", KEY, b"\x01")
    assert load_pairing(store) is None


def test_link_config_validation():
    raises(ConfigError, link_config, {"heartbeat_ms": 5})
    raises(ConfigError, link_config, {"heartbeat_ms": 5000, "link_timeout_ms": 10000})
    raises(ConfigError, link_config, {"hearbeat_ms": 1000})
    assert link_config(None)["heartbeat_ms"] == 2000


def test_unpaired_valve_counts_and_ignores():
    clock = SimClock()
    air = SimAir(clock)
    r = air.radio(VALVE_MAC)
    link = ValveLink(r, clock, FileStore(tmpdir("unp")))
    air.inject(DET_MAC, VALVE_MAC, F.close(KEY, 3, 0, 3, 1))
    link.poll()
    assert link.rejected["unpaired"] == 1 and link.link == "unpaired"


def test_detector_gives_up_after_the_bound():
    clock = SimClock()
    air = SimAir(clock)
    r = air.radio(DET_MAC)
    store = FileStore(tmpdir("bound"))
    provision(store, "D", KEY, VALVE_MAC)
    link = DetectorLink(r, clock, store, {"retry_bound_ms": 2000})
    link.close("ch4_high")
    for _ in range(300):
        clock.advance(10)
        link.poll()
    assert link.state == "failed" and link.fault == "interlock_no_ack"
    assert 4 <= link.attempts <= 8  # 0,100,300,700,1500 ms: backoff, not a flood


def test_a_reject_report_without_room_is_told_later_and_raises_nothing():
    # The report's dicts are built when the heap may be full: poll() must not raise for it
    # (on the valve the pending-pairing check follows), and the report is not lost.
    rig = _rig("rejroom")
    rig.run(3000)
    told = []
    room = [False]

    def emit(ev):
        if ev.get("state") == "rejected":
            if not room[0]:
                raise MemoryError("no room for the report")
            told.append(ev)

    for link in (rig.det, rig.valve.link):
        link.emit = emit
        link._receive_one(b"\x02\x00\x00\x00\x00\x07", b"\x02" + bytes(30))  # version 2
        link._reject_report_at = rig.clock.ticks_ms()  # due now
        link.poll()  # must not raise
        assert link._reported_rejects == 0
    room[0] = True
    rig.run(link.cfg["reject_report_ms"] + 1000)
    assert [(e["total"], e["counts"]["version"]) for e in told] == [(1, 1), (1, 1)], told
