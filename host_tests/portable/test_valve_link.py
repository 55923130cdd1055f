"""The valve controller with its radio link, on both interpreters: interlock and link_lost."""

import gasguard.valve  # noqa: F401  (big modules first, before the heap fragments)
import gasguard.espnow_link  # noqa: F401
from interlock_rig import InterlockRig
from ptest import tmpdir


def _rig(tag, **kw):
    return InterlockRig(tmpdir("vlink-" + tag), **kw)


def test_interlock_close_end_to_end():
    rig = _rig("e2e")
    rig.run(3000)
    rig.det.close("ch4_high")
    assert rig.run_until(lambda: rig.det.state == "confirmed", 2000) is not None
    assert rig.run_until(lambda: rig.valve.state == "closed", 3000) is not None
    assert rig.valve.cause == "interlock" and rig.board.trips_seen == 1
    assert rig.valve_events()[-1] == {"event": "valve", "state": "closed", "cause": "interlock", "source": "ch4"}
    rig.run(3000)
    assert rig.det.valve_state == "closed" and rig.det.valve_cause == "interlock"
    st = rig.valve.status()
    assert st["link"] == "up" and st["counters"]["remote_closes"] == 1
    assert st["counters"]["rejected_frames"] == 0


def test_link_lost_closes_mid_tier_valve_and_reports():
    rig = _rig("lost", link={"heartbeat_ms": 1000, "link_timeout_ms": 5000})
    rig.run(3000)
    rig.power_detector(False)
    rig.run(7000)
    assert rig.valve.link.link == "lost"
    assert ("V", {"event": "link", "state": "lost"}) in [(w, e) for (_t, w, e) in rig.events]
    rig.run(2000)
    assert not rig.board.is_open and rig.valve.cause == "link_lost"


def test_link_lost_only_reported_on_low_tier():
    rig = _rig("lostL", link={"heartbeat_ms": 1000, "link_timeout_ms": 5000}, valve_cfg={"tier": "L"})
    rig.run(2000)
    rig.power_detector(False)
    rig.run(9000)
    assert rig.valve.link.link == "lost" and rig.board.is_open


