"""`gasguard sim` end to end: both devices' real firmware on MicroPython, a leak, the
valve closing over a lossy radio, and the messages at a real broker (the embedded one)."""

import argparse
import io
import json

from gasguard_tools import sim_pair
from gasguard_tools.schemas import check_topic


def run(*argv):
    p = argparse.ArgumentParser()
    sim_pair.add_pair_arguments(p)
    a = p.parse_args(list(argv))
    a.speed = 400.0
    out = io.StringIO()
    assert sim_pair.run_pair(a, out) == 0
    return a.result, out.getvalue()


def test_leak_alarm_closes_valve_and_reaches_the_broker():
    res, text = run("--loss", "30", "--seed", "7")
    ev = res["events"]
    alarm = [e for e in ev if e["event"] == "alarm" and e["state"] == "on" and e["gas"] == "ch4"]
    closed = [e for e in ev if e["event"] == "valve" and e["state"] == "closed"]
    assert [e["level"] for e in alarm] == [1, 2]
    assert closed and closed[0]["cause"] == "interlock" and closed[0]["dev"] == "valve"
    # the leak starts at 330 s; the GB 15322 window is 15..60 s, and the valve follows
    assert 345 <= alarm[0]["t"] <= 390
    assert closed[0]["t"] - alarm[1]["t"] <= 5
    # the valve stayed closed after the gas cleared, until the hand reset at 560 s
    reopened = [e for e in ev if e["event"] == "valve" and e["state"] == "open"]
    assert [e["t"] for e in reopened] == [560] and reopened[0]["cause"] == "manual_reset"
    # what reached the broker: every event delivered, each message valid per its schema
    assert res["summary"]["outbox_left"] == [0, 0]
    assert res["invalid"] == 0
    published = [json.loads(p) for t, p, _r in res["messages"] if t.endswith(("/event", "/valve"))]
    kinds = [(m.get("event") or m.get("body", {}).get("event")) for m in published]
    assert any("alarm" in json.dumps(m) for m in published), kinds
    assert any('"closed"' in json.dumps(m) and "interlock" in json.dumps(m) for m in published)
    for t, p, _r in res["messages"]:
        kind, dev, msg, errs = check_topic(t, p, "gasguard", strict=True)
        assert not errs, (t, errs)
    assert "valve CLOSED (cause interlock" in text
    # mid tier: both devices registered their active identifier with the (simulated) platform
    assert res["summary"]["registered"] == {"detector": True, "valve": True}


def test_bad_scenario_is_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t_s,ch4_ppm\n0,0\n10,lots\n")
    p = argparse.ArgumentParser()
    sim_pair.add_pair_arguments(p)
    a = p.parse_args(["--scenario", str(bad)])
    a.speed = 100.0
    import pytest
    from gasguard_tools.runtime import ToolError

    with pytest.raises(ToolError, match="line 3"):
        sim_pair.run_pair(a, io.StringIO())


def test_valve_reopened_by_hand_during_the_leak_is_closed_again(tmp_path):
    sc = tmp_path / "reopen.csv"
    sc.write_text("t_s,ch4_ppm,pressure_kpa,flow_m3h,valve_hand\n"
                  "0,0,2.0,0.5,\n330,20000,,,\n380,,,,reset\n450,0,,,\n470,,,,\n")
    res, _ = run("--scenario", str(sc), "--loss", "10")
    valve = [(e["t"], e["state"]) for e in res["events"]
             if e["event"] == "valve" and e["state"] in ("open", "closed")]
    assert valve[0][1] == "closed" and (380, "open") in valve
    again = [t for t, st in valve if st == "closed" and t >= 380]
    assert again and again[0] - 380 <= 10, valve
    assert res["summary"]["valve"] == "closed"


def run_json(*argv, speed=400.0):
    p = argparse.ArgumentParser()
    sim_pair.add_pair_arguments(p)
    p.add_argument("--micropython")
    a = p.parse_args(list(argv) + ["--json"])
    a.speed = speed
    out = io.StringIO()
    assert sim_pair.run_pair(a, out) == 0
    return a.result, out.getvalue().splitlines()


def test_each_device_runs_in_its_own_interpreter_with_its_own_heap(tmp_path):
    """On the ESP32-like interpreter with --heap: two processes, each with a heap of that size,
    and --json ends with the summary carrying both devices' heap figures."""
    from conftest import need_esp32

    res, lines = run_json("--micropython", need_esp32(), "--heap", "400k", "--loss", "20",
                          "--seed", "3")
    last = json.loads(lines[-1])
    assert last == res["summary"] and last["sim"] == "end"
    assert last["valve"] == "open" and last["cause"] is None  # reopened by hand at 560 s
    assert last["outbox_left"] == [0, 0] and all(n > 0 for n in last["published"])
    assert last["registered"] == {"detector": True, "valve": True}
    closed = [e for e in res["events"] if e.get("event") == "valve" and e["state"] == "closed"]
    assert closed and closed[0]["cause"] == "interlock"
    # the radio: the senders lost about a fifth, the relay delivered the rest
    r = last["radio"]
    assert r["sent"] == r["dropped"] + r["delivered"] + r["unreachable"]
    assert 0.1 < r["dropped"] / r["sent"] < 0.3
    heap = last["heap"]
    assert sorted(heap) == ["detector", "valve"]
    for dev, h in heap.items():
        assert sorted(h) == ["max_block", "min_free", "size"]
        # its own heap, exactly the size asked: the harness (simulated board, air, scenario)
        # runs on top of it, as the chip has no harness (boards/sim/ballast.py)
        assert h["size"] == 400 * 1024, (dev, h)
        assert 0 < h["min_free"] < h["size"] and 0 < h["max_block"] < h["size"], (dev, h)
    # two chips, two different programs: the detector carries more than the valve
    assert heap["detector"]["min_free"] < heap["valve"]["min_free"]
    # each runs its deploy set with its boot-only code released, as the board's main.py
    # leaves it: nothing the simulated board used to model the sensors stays in its heap
    from gasguard_tools.cmd_package import deploy_set

    for dev, tier in (("detector", "mid"), ("valve", "M")):
        mods = res["devices"][dev]["modules"]
        have = {"gasguard." + f[9:-3] for f in deploy_set(dev, tier)} | {"gasguard", "gasguard.ticks"}
        assert set(mods) <= have, (dev, sorted(set(mods) - have))
        for m in ("sensors", "valve_cfg", "profiles", "calibration", "devices", "report_cfg"):
            assert "gasguard." + m not in mods, (dev, m)


def test_a_device_that_runs_out_of_heap_is_a_clear_error_not_a_hang():
    import pytest
    from conftest import need_esp32
    from gasguard_tools.runtime import ToolError

    with pytest.raises(ToolError, match="(?s)simulated (detector|valve) stopped .*MemoryError"):
        run_json("--micropython", need_esp32(), "--heap", "40k")


import pytest  # noqa: E402
from conftest import NOT_FIT_YET  # noqa: E402


@pytest.fixture(scope="module")
def long_leak_112k(tmp_path_factory):
    """One run of a long leak (6 minutes at 40 %LEL) with each device at 112 KB on the
    ESP32-like interpreter, shared by the two tests below."""
    from conftest import need_esp32

    sc = tmp_path_factory.mktemp("long_leak") / "long_leak.csv"
    sc.write_text("t_s,ch4_ppm,pressure_kpa,flow_m3h,valve_hand\n"
                  "0,0,2.0,0.5,\n330,20000,,,\n690,0,,,\n900,,,,\n")
    return run_json("--micropython", need_esp32(), "--heap", "112k", "--scenario", str(sc))


def test_long_leak_at_112k_on_the_esp32_like_interpreter_runs_to_its_end(long_leak_112k):
    """Done means (issue 10), first half: at 112 KB each (the mid-tier detector and the valve
    M, each its deploy set from .mpy), a long leak runs to its end: the alarm closes the valve
    over the radio, it stays closed, and every event reaches the broker."""
    res, lines = long_leak_112k
    last = json.loads(lines[-1])
    assert last["sim"] == "end" and last["t"] == 900, last
    assert last["valve"] == "closed" and last["cause"] == "interlock", last
    assert last["outbox_left"] == [0, 0] and all(n > 0 for n in last["published"]), last
    assert last["registered"] == {"detector": True, "valve": True}, last
    alarm = [e for e in res["events"] if e.get("event") == "alarm" and e["state"] == "on"]
    assert [e["level"] for e in alarm if e["gas"] == "ch4"] == [1, 2], alarm
    for dev, h in last["heap"].items():
        assert h["size"] == 112 * 1024 and 0 < h["min_free"] < h["size"], (dev, h)


@pytest.mark.xfail(strict=True, reason=NOT_FIT_YET)
def test_long_leak_at_112k_keeps_40k_free_on_both_devices(long_leak_112k):
    """Done means (issue 10), second half: both devices keep 40 KB free through it (on
    2026-12-04 the valve does, 44768 B; the mid detector does not, 19456 B)."""
    res, lines = long_leak_112k
    last = json.loads(lines[-1])
    assert last["valve"] == "closed" and last["outbox_left"] == [0, 0]
    for dev, h in last["heap"].items():
        assert h["min_free"] >= 40960, (dev, h)


def test_an_external_broker_is_used_with_broker_host_port(tmp_path):
    from fixtures.reporting import Mosquitto

    m = Mosquitto(tmp_path).start()  # skips (or fails under GASGUARD_REQUIRE_BROKER=1)
    try:
        res, lines = run_json("--broker", "127.0.0.1:%d" % m.port, "--loss", "0")
    finally:
        m.kill()
    last = json.loads(lines[-1])
    assert last["outbox_left"] == [0, 0] and last["radio"]["dropped"] == 0
    topics = {t.rsplit("/", 1)[-1] for t, _p, _r in res["messages"]}
    assert {"event", "valve", "state", "identity"} <= topics
    assert not [ln for ln in lines if "embedded MQTT broker" in ln]


def test_the_relay_forwards_a_broadcast_to_every_other_device_and_a_unicast_to_its_mac():
    """ESP-NOW's broadcast (the pairing request, PAIR_REQ) reaches every other device on
    the simulated air, not the sender; a unicast only its MAC (pair_bench pairs through it)."""
    import socket

    relay = sim_pair.AirRelay(3, 1e9).start()
    socks = []
    try:
        macs = [bytes([2, 0, 0, 0, 0, i]) for i in (1, 2, 3)]
        for m in macs:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", relay.port))
            s.send(b"H" + m)
            socks.append(s)
        for s in socks:
            assert s.recv(512) == b"G"  # all three there: the first slice
        socks[0].send(b"F" + sim_pair.BROADCAST + b"pair?")
        socks[1].send(b"F" + macs[2] + b"only-3")
        for s in socks:
            s.send(b"T")
        got = []
        for s in socks:
            frames = []
            while True:
                d = s.recv(512)
                if d == b"G":
                    break
                frames.append(d)
            got.append(frames)
        assert got[0] == []  # the sender does not hear its own broadcast
        assert got[1] == [b"F" + macs[0] + b"pair?"]
        assert sorted(got[2]) == sorted([b"F" + macs[0] + b"pair?", b"F" + macs[1] + b"only-3"])
        assert relay.stats == {"delivered": 3, "unreachable": 0}
    finally:
        for s in socks:
            s.close()
        relay.stop()
