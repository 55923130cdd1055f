"""ValveApp (the valve device: controller + button + event log + service console)."""

from valve_app_rig import Rig


def test_short_press_closes_manual_button_and_hold_opens_the_pair_window():
    r = Rig("btn")
    r.run(500)
    r.board.button.set_input(1)
    r.run(200)
    r.board.button.set_input(0)
    r.run(2000)
    assert ("closing", "manual", "button") in r.valve_events()
    assert ("closed", "manual", "button") in r.valve_events()
    assert not r.board.is_open
    r.board.button.set_input(1)
    r.run(3200)
    r.board.button.set_input(0)
    r.run(200)
    assert [e for e in r.app.events(50) if e["event"] == "button"] == \
        [e for e in r.app.events(50) if e["event"] == "button" and e["action"] == "pair"]
    assert len([e for e in r.app.events(50) if e["event"] == "button"]) == 1


def test_itest_is_a_local_close_and_hush_is_unsupported():
    r = Rig("itest")
    r.run(500)
    st, body = r.ask("ITEST")
    assert st == "OK" and body["closing"] is True
    r.run(2000)
    assert ("closed", "manual", "service") in r.valve_events()
    st, body = r.ask("HUSH")
    assert st == "ERR" and body.startswith("E_UNSUPPORTED")
    st, body = r.ask("CAL?")
    assert st == "ERR" and body.startswith("E_UNSUPPORTED")


def test_selftest_reads_without_closing():
    r = Rig("self")
    r.run(1500)
    st, body = r.ask("SELFTEST")
    assert st == "OK" and body["result"] == "pass", body
    assert body["checks"]["switch"] == "open" and body["checks"]["coil"] == "not_available"
    r.run(2000)
    assert r.board.is_open and r.board.trip.value() == 0 and r.valve_events() == []
    r.board.pressure_pa = -6000  # transducer wire broken: below 0.3 V
    st, body = r.ask("SELFTEST")
    assert body["result"] == "fail" and "pressure_sensor" in body["faults"]
    assert r.app.events(1)[0]["event"] == "self_test" or \
        [e for e in r.app.events(5) if e["event"] == "self_test"][-1]["result"] == "fail"


def test_reopen_by_hand_is_reported():
    r = Rig("reopen")
    r.run(500)
    r.board.pressure_pa = 500
    r.run(3000)
    r.board.pressure_pa = 2000
    r.run(500)
    assert r.board.manual_reset()
    r.run(500)
    assert r.valve_events()[-1] == ("open", "manual_reset", None)
    assert r.app.status()["counters"]["reopens"] == 1


def test_readings_history_and_info():
    r = Rig("read", config={"app": {"history_period_s": 1}})
    r.run(3500)
    st, body = r.ask("READ?")
    assert body["valve"] == "open" and 1990 <= body["pressure_pa"] <= 2010
    st, body = r.ask("HIST?")
    assert body["points"] == 3 and len(body["pressure_pa_min"]) == 3
    assert 1990 <= body["pressure_pa_min"][-1] <= 2010
    st, body = r.ask("HELLO")
    assert body["kind"] == "valve" and body["board"] == "test-valve" and body["tier"] == "M"


def test_reboot_after_reply():
    r = Rig("reboot")
    st, body = r.ask("REBOOT")
    assert st == "OK" and r.board.reboots == 1
    assert r.app.events(1)[0]["event"] == "reboot"
