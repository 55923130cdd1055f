"""End to end: the virtual valve controller on a pty, driven through pyserial and `gasguard diag`.

boards/sim/virtual_valve.py runs the real ValveApp on the simulated self-closing valve
(`gasguard sim --serial pty --device valve`); these tests talk to it exactly as a
technician's laptop talks to a valve on USB serial.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from fixtures.dut import Dut, _wait_ready, make_virtual_device, sim_serial_port  # noqa: F401

from gasguard_tools.cmd_sim import SIM_FACTORY_KEY

KEY = bytes.fromhex(SIM_FACTORY_KEY)


def gasguard(*args, timeout=60):
    e = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    return subprocess.run([sys.executable, "-m", "gasguard_tools.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=e, cwd=str(ROOT))


@pytest.fixture
def valve(make_virtual_device):  # noqa: F811
    dev = make_virtual_device(speed=20.0, device="valve")
    d = _wait_ready(Dut(dev.port, device=dev))
    yield d
    d.close()


def wait_for(d, pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        st = d.cmd("STATUS?")
        if pred(st):
            return st
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; last status %r" % (what, st))
        time.sleep(0.1)


def close_by_under_pressure(d):
    d.cmd("SIM PRESSURE 0.5")
    return wait_for(d, lambda s: s["valve"] == "closed", "the under-pressure close")


def valve_events(d):
    return [e for e in d.cmd("LOG? 50")["events"] if e["event"] == "valve"]


def test_under_pressure_close_shows_in_diag_status_and_log(valve):
    st = valve.cmd("STATUS?")
    assert st["kind"] == "valve" and st["valve"] == "open" and st["link"] == "unpaired"
    close_by_under_pressure(valve)
    r = gasguard("diag", "--port", valve.port, "status", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["kind"] == "valve" and s["board"] == "sim-valve"
    assert s["valve"] == "closed" and s["cause"] == "under_pressure"
    assert s["last_close"]["cause"] == "under_pressure" and s["last_close"]["boot"] == 1
    assert "under-pressure" in s["cause_text"]
    assert s["pressure_pa"] == 500 and s["supply_mv"] == 3600 and s["flow_m3h"] == 0.0
    assert s["counters"]["closes"] == 1 and s["counters"]["rejected_frames"] == 0
    assert s["faults"] == [] and s["boot_count"] == 1 and s["reset_cause"] == "power_on"
    r = gasguard("diag", "--port", valve.port, "log", "--json")
    evs = json.loads(r.stdout)
    closes = [e for e in evs if e["event"] == "valve" and e["state"] == "closed"]
    assert [e["cause"] for e in closes] == ["under_pressure"]
    r = gasguard("diag", "--lang", "en", "--port", valve.port, "log")
    assert r.returncode == 0 and "last close in this log: under_pressure" in r.stdout
    assert "upstream?); reopen by hand once the supply is back (under_pressure); state=closed" in r.stdout
    r = gasguard("diag", "--lang", "en", "--port", valve.port, "status")
    assert r.returncode == 0, r.stderr
    assert "CLOSED - cause under_pressure" in r.stdout and "0.50 kPa" in r.stdout
    assert "rejected frames 0" in r.stdout


def test_reopen_by_hand_is_reported(valve):
    close_by_under_pressure(valve)
    assert valve.error("SIM HAND reset") == "E_STATE"  # the latch holds while the supply is out
    valve.cmd("SIM PRESSURE 2")
    valve.cmd("SIM HAND reset")
    st = wait_for(valve, lambda s: s["valve"] == "open", "the reopening")
    assert st["counters"]["reopens"] == 1 and st["cause"] is None
    assert [(e["state"], e["cause"]) for e in valve_events(valve)] == [
        ("closed", "under_pressure"), ("open", "manual_reset")]
    s = json.loads(gasguard("diag", "--port", valve.port, "status", "--json").stdout)
    assert s["valve"] == "open" and s["last_close"]["cause"] == "under_pressure"


def test_rejected_frames_and_sensor_faults_are_counted(valve):
    valve.cmd("SIM FRAME 00112233445566778899aabbccddeeff")
    valve.cmd("SIM FAULT pressure open")
    st = wait_for(valve, lambda s: s["counters"].get("rejected_frames") == 1
                  and "pressure_sensor" in s["faults"], "the rejected frame and the fault")
    assert st["valve"] == "open"  # a sensor fault is reported, never a trip
    s = json.loads(gasguard("diag", "--port", valve.port, "status", "--json").stdout)
    assert s["counters"]["rejected_frames"] == 1 and sum(s["rejected_by_reason"].values()) == 1
    assert "pressure_sensor" in s["faults"]
    r = gasguard("diag", "--port", valve.port, "selftest")
    assert r.returncode == 1 and "FAIL" in r.stdout and "pressure_sensor" in r.stdout
    r = gasguard("diag", "--port", valve.port, "watch", "--count", "2", "--interval", "0.1")
    assert r.returncode == 0 and r.stdout.count("OPEN") == 2 and "flow" in r.stdout
    r = gasguard("diag", "--port", valve.port, "report", "--html", "/dev/null")
    assert r.returncode == 1 and "diag status" in r.stderr and "Traceback" not in r.stderr


def test_button_short_press_closes_and_the_cause_is_manual_button(make_virtual_device):  # noqa: F811
    dev = make_virtual_device(speed=1.0, device="valve")  # real time: a 0.3 s press is short
    valve = _wait_ready(Dut(dev.port, device=dev))
    valve.cmd("SIM BUTTON 1")
    time.sleep(0.3)
    valve.cmd("SIM BUTTON 0")
    wait_for(valve, lambda s: s["valve"] == "closed", "the button close")
    assert ("closed", "manual", "button") in [(e["state"], e["cause"], e.get("source"))
                                              for e in valve_events(valve)]
    assert valve.cmd("STATUS?")["button"]["shorts"] == 1
    valve.close()


# Every verb of the console, each with harmless and hostile arguments.
ATTEMPTS = {
    "HELLO": ["", "open"], "HELP": ["", "open"], "ID?": [""], "STATUS?": [""], "READ?": [""],
    "LOG?": ["", "5"], "HIST?": [""], "CFG?": ["", "valve"],
    "CFG": ["valve.tier \"L\"", "valve.backup_trip false", "valve.open true",
            "valve.state \"open\""],
    "CAL?": [""], "CAL": ["ZERO ch4", "ABORT"], "FACTORY?": [""],
    "PROV": ["{\"valve\": \"open\"}"], "SELFTEST": ["", "open"], "ITEST": ["", "open"],
    "HUSH": ["", "open"],
    "SIM": ["STATE?", "BUTTON 1", "BUTTON 0", "FLOW 9", "FLOW 0", "PRESSURE 2", "ADVANCE 5",
            "OPEN", "HAND open"],
}


def test_no_service_command_opens_the_valve(valve):
    close_by_under_pressure(valve)
    valve.cmd("SIM PRESSURE 2")  # the supply is back: only a hand may reopen it now
    verbs = valve.cmd("HELP")["commands"]
    assert set(ATTEMPTS) | {"AUTH", "REBOOT", "MAINT"} >= set(verbs), verbs
    for factory in (False, True):
        if factory:
            valve.factory(KEY)
        for verb in verbs:
            if verb in ("AUTH", "REBOOT", "MAINT"):  # below, and in the next test
                continue
            for args in ATTEMPTS.get(verb, [""]):
                valve.request(("%s %s" % (verb, args)).strip())
                sim = valve.cmd("SIM STATE?")
                assert not sim["is_open"], (factory, verb, args)
                assert valve.cmd("STATUS?")["valve"] in ("closed", "closing"), (verb, args)
        for line in ("OPEN", "VALVE OPEN", "RESET", "UNLATCH"):
            assert valve.error(line) == "E_UNKNOWN"
    assert [e for e in valve_events(valve) if e["state"] == "open"] == []
    # a reboot keeps it closed, and still knows why
    valve.write("REBOOT")
    time.sleep(1.0)
    _wait_ready(valve)
    st = valve.cmd("STATUS?")
    assert st["boot_count"] == 2 and st["reset_cause"] == "soft_reset"
    assert st["valve"] == "closed" and st["cause"] == "under_pressure"
    assert not valve.cmd("SIM STATE?")["is_open"]
    assert [e for e in valve_events(valve) if e["state"] == "open"] == []


def test_the_valve_stays_closed_through_maintenance_mode(make_virtual_device):  # noqa: F811
    dev = make_virtual_device(speed=20.0, device="valve")
    d = _wait_ready(Dut(dev.port, device=dev))
    close_by_under_pressure(d)
    d.factory(KEY)
    assert d.cmd("MAINT")["maintenance"] is True
    deadline = time.monotonic() + 10
    while dev.mode != "repl" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dev.mode == "repl"
    world = json.loads((dev.state / "valve_world.json").read_text())
    assert world["is_open"] is False
    d.close()


def test_gasguard_sim_device_option(tmp_path):
    e = dict(os.environ, PYTHONPATH=str(ROOT / "tools"), PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "gasguard_tools.cli", "sim", "--serial", "pty",
                          "--device", "valve", "--state", str(tmp_path / "v")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e)
    try:
        port = sim_serial_port(p)
        r = gasguard("diag", "--port", port, "status", "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["kind"] == "valve" and s["valve"] == "open" and s["board"] == "sim-valve"
    finally:
        p.terminate()
        p.wait(10)
    r = gasguard("sim", "pair", "--device", "valve")
    assert r.returncode == 2 and "--serial pty" in r.stderr


def test_both_apps_boot_the_same_way_without_the_valve_loading_the_detector():
    """Both devices are the one device base (gasguard.device_base) around their own core:
    boot, event path, loop, status and history are its, not copies; the valve never
    imports gasguard.app."""
    import subprocess
    import sys as _sys

    from gasguard import app, device_base, valve_app

    for cls in (app.DetectorApp, valve_app.ValveApp):
        assert issubclass(cls, device_base.DeviceApp)
        for name in ("poll", "poll_core", "run_forever", "emit", "status", "history", "info",
                     "refuse", "attach", "config_set"):
            assert name not in cls.__dict__, (cls, name)
    code = "import sys, gasguard.valve_app; print('gasguard.app' in sys.modules)"
    r = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "firmware")})
    assert r.stdout.strip() == "False", r.stderr
