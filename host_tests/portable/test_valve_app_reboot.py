"""ValveApp across reboots: boot count, the event log, why it closed, the persisted config."""

import gc

from valve_app_rig import Rig


def test_boot_count_event_log_and_reset_cause():
    r = Rig("boot")
    assert r.app.boot_count == 1 and r.app.reset_cause == "power_on"
    ev = r.app.events(1)[0]
    assert ev["event"] == "boot" and ev["valve"] == "open" and ev["seq"] == 0
    root = r.root
    r = ev = None
    gc.collect()
    r2 = Rig("boot", root=root)
    assert r2.app.boot_count == 2
    assert [e["event"] for e in r2.app.events(10)] == ["boot", "boot"]


def test_under_pressure_close_is_logged_with_its_cause_and_survives_reboot():
    r = Rig("under")
    r.run(3000)
    r.board.pressure_pa = 500
    r.run(3000)
    assert ("closed", "under_pressure", None) in r.valve_events() or \
        ("closed", "under_pressure", "backup") in r.valve_events()
    st, body = r.ask("STATUS?")
    assert st == "OK" and body["kind"] == "valve"
    v = body
    assert v["valve"] == "closed" and v["cause"] == "under_pressure"
    assert v["last_close"]["cause"] == "under_pressure" and v["counters"]["closes"] == 1
    root = r.root
    r = body = v = None
    gc.collect()  # one device at a time, as on the board
    r2 = Rig("under", root=root, closed=True)  # still closed after a reboot
    body = r2.app.status()  # (no console: two apps' garbage in a 112k heap)
    assert body["valve"] == "closed" and body["cause"] == "under_pressure"
    assert body["last_close"]["cause"] == "under_pressure" and body["last_close"]["boot"] == 1
    assert body["boot_count"] == 2 and body["counters"]["closes"] == 0


def test_config_set_is_validated_persisted_and_used_after_reboot():
    r = Rig("cfg")
    r.app.service.factory = True
    st, body = r.ask("CFG valve.under_pressure_pa 99999")
    assert st == "ERR" and body.startswith("E_CONFIG")
    st, body = r.ask("CFG valvez.x 1")
    assert st == "ERR" and body.startswith("E_CONFIG")
    st, body = r.ask("CFG valve.under_pressure_pa 1500")
    assert st == "OK" and body["reboot_required"] is True
    root = r.root
    r = body = None
    gc.collect()
    r2 = Rig("cfg", root=root)
    assert r2.app.controller.cfg["under_pressure_pa"] == 1500
    assert r2.app.config_get()["valve"]["under_pressure_pa"] == 1500


def test_a_stored_config_this_firmware_refuses_falls_back_and_is_reported():
    import json

    from gasguard import record
    from gasguard.store import FileStore
    from ptest import tmpdir

    root = tmpdir("vapp-badcfg")
    bad = {"valve": {"under_pressure_pa": 99999}}
    FileStore(root).write("config.rec", record.seal(json.dumps(bad).encode()))
    r = Rig("badcfg", root=root, config={"valve": {"tier": "H"}})
    assert r.app.controller.cfg["tier"] == "H" and r.app.controller.cfg["under_pressure_pa"] == 800
    ev = [e for e in r.app.events(5) if e["event"] == "fault"][0]
    assert ev["event"] == "fault" and ev["code"] == "config_invalid" and "under_pressure_pa" in ev["detail"]
    assert "config" in r.app.status()["last_errors"][0]


def test_button_factory_mode_times_out_after_15_min_idle():
    from gasguard.valve_app import ValveApp
    from valve_app_rig import NoIdentity

    r = Rig("factory-idle")
    app = ValveApp(r.board, r.store, None, identity=NoIdentity(), button_at_boot=True)
    assert app.service.factory is True
    r.app = app
    r.run(14 * 60000, step=1000)
    st, body = r.ask("FACTORY?")
    assert body == {"factory": True, "via": "button"}  # the request restarts the idle time
    r.run(15 * 60000 + 1000, step=1000)
    st, body = r.ask("CFG valve.under_pressure_pa 1500")
    assert st == "ERR" and body.startswith("E_FACTORY")


class _Failing:
    def poll(self):
        raise OSError(5)


def test_a_failing_poller_under_a_full_heap_is_counted_and_the_loop_turn_goes_on():
    """A poller that raises while no heap is left (heap locked): the loop turn counts it and
    returns; its text is dropped rather than raised out of the loop (the device would stop
    with it: the watchdog's reset, 8 s without protection). MicroPython only."""
    from ptest import full_heap_lockable, raised_under_full_heap

    if not full_heap_lockable():
        return
    from valve_app_rig import Rig

    r = Rig("fullheap-poller")
    r.run(100)
    r.app.pollers.append(_Failing())
    before = r.app.error_count
    err = raised_under_full_heap(r.app.poll_core)
    assert err is None, repr(err)
    assert r.app.error_count == before + 1
