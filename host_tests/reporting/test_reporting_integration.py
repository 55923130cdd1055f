"""Real integration: the firmware's Reporter on the MicroPython unix port, real sockets,
a real mosquitto on 127.0.0.1, under the outages the issue lists.

Every scenario asserts: every alarm/valve event reaches the platform at least once, the
first arrivals (dedup on dev, boot, seq) are in the order the events were queued, every
message validates against docs/schemas, and the firmware never made a socket call on a
blocking socket (structural non-blocking; the durations are measured in
tools/gasguard_tools/bench_reporting.py, not asserted here).
"""

import json

import pytest

from gasguard_tools import schemas
from fixtures.reporting import (  # noqa: F401
    Collector, Mosquitto, Runner, StallServer, first_occurrences, mosquitto, wait_for,
)

pytestmark = pytest.mark.broker


def _alarm_events(n, start=0):
    evs = []
    for i in range(start, start + n):
        k = i % 4
        if k == 0:
            evs.append({"event": "alarm", "gas": "ch4", "level": 1, "state": "on", "t": i})
        elif k == 1:
            evs.append({"event": "relay", "state": "on", "t": i})
        elif k == 2:
            evs.append({"event": "interlock", "state": "close", "cause": "ch4_low", "t": i})
        else:
            evs.append({"event": "alarm", "gas": "ch4", "level": 1, "state": "off", "t": i})
    return evs


def _check_delivery(col, queued, dev=None):
    """queued: [(boot, seq, t)] in queue order. All delivered, first arrivals in order."""
    want = [(b, s) for b, s, t in queued]

    def events():
        return [m for m in col.events() if dev is None or m["dev"] == dev]

    def got():
        keys = [(m["boot"], m["seq"]) for m in first_occurrences(events())]
        return set(want) <= set(keys)

    wait_for(got, 30, what="every queued event at the collector")
    firsts = first_occurrences(events())
    keys = [(m["boot"], m["seq"]) for m in firsts if (m["boot"], m["seq"]) in set(want)]
    assert keys == want  # in order, after dedup
    byk = {(m["boot"], m["seq"]): m for m in firsts}
    assert [byk[k]["data"]["t"] for k in want] == [t for b, s, t in queued]


def _check_schemas(col):
    """Every message the device sent validates (the test's own commands are not checked:
    some are invalid on purpose)."""
    with col.lock:
        msgs = [m for m in col.msgs if not m[0].endswith("/command")]
    assert msgs
    for topic, payload, retain in msgs:
        kind, dev, msg, errs = schemas.check_topic(topic, payload, strict=True)
        assert errs == [], (topic, payload, errs)


def _queue(run, evs):
    out = []
    for ev in evs:
        r = run.event(ev)
        out.append((r["boot"], r["seq"], ev["t"]))
    return out


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_normal_reporting(mosquitto, tmp_path, runtime):
    col = Collector(mosquitto.port)
    run = Runner(mosquitto.port, tmp_path / "store", runtime=runtime)
    try:
        queued = _queue(run, _alarm_events(8))
        run.send("telemetry", d={"ch4_ppm_x10": 120, "supply_mv": 5000})
        run.send("state", d={"alarm": 1})
        _check_delivery(col, queued)
        wait_for(lambda: col.decoded("telemetry"), 10, what="telemetry")
        wait_for(lambda: run.status()["outbox"] == 0, 10, what="PUBACKs to empty the outbox")
        st = run.status()
        assert st["blocking_calls"] == 0 and st["online"]
        wait_for(lambda: any(m["online"] and m["status"] == {"alarm": 1} for m in col.decoded("state")),
                 10, what="state")
    finally:
        run.quit()
    # graceful shutdown: offline state with reason shutdown, retained
    wait_for(lambda: any(not m["online"] and m.get("reason") == "shutdown"
                         for m in col.decoded("state")), 10, what="offline state")
    _check_schemas(col)
    col.close()


def test_broker_killed_and_restarted_during_an_alarm(tmp_path):
    m = Mosquitto(tmp_path).start()
    col = Collector(m.port)
    run = Runner(m.port, tmp_path / "store")
    try:
        queued = _queue(run, _alarm_events(2))
        _check_delivery(col, queued)
        m.kill()  # crash in the middle of the alarm
        queued += _queue(run, _alarm_events(6, 2))
        wait_for(lambda: not run.status()["online"], 15, what="device to notice the broker is gone")
        # hold the device off the network until the collector is back, so nothing the
        # restarted broker accepts goes to a subscriber that is not there yet
        run.call("net", up=False)
        queued += _queue(run, _alarm_events(2, 8))
        m.start()
        wait_for(col.subscribed.is_set, 15, what="collector to resubscribe")
        run.call("net", up=True)
        _check_delivery(col, queued)
        wait_for(lambda: run.status()["outbox"] == 0, 10, what="PUBACKs to empty the outbox")
        st = run.status()
        assert st["blocking_calls"] == 0
        assert st["conn_failures"] >= 1 and st["connects"] >= 2
    finally:
        run.quit()
        col.close()
        m.stop()
    _check_schemas(col)


def test_broker_that_accepts_tcp_and_stalls(mosquitto, tmp_path):
    stall = StallServer(mosquitto.port)
    col = Collector(mosquitto.port)
    run = Runner(stall.port, tmp_path / "store", "--connect-timeout", 1000)
    try:
        queued = _queue(run, _alarm_events(4))
        # CONNECT goes out, CONNACK never comes: the client must time out (1 s) and retry
        wait_for(lambda: run.status()["conn_failures"] >= 2, 20, what="CONNACK timeouts")
        st = run.status()
        assert st["online"] is False and st["outbox"] == 4
        assert st["blocking_calls"] == 0
        assert stall.accepted >= 2
        queued += _queue(run, _alarm_events(4, 4))
        stall.mode = "forward"  # the broker recovers
        _check_delivery(col, queued)
        assert run.status()["blocking_calls"] == 0
    finally:
        run.quit()
        col.close()
        stall.close()
    _check_schemas(col)


def test_network_down_for_simulated_hours(mosquitto, tmp_path):
    col = Collector(mosquitto.port)
    run = Runner(mosquitto.port, tmp_path / "store", "--sim-clock")
    try:
        queued = _queue(run, _alarm_events(1))
        _check_delivery(col, queued)
        run.call("net", up=False)
        # 6 simulated hours offline, an event every 30 minutes; the clock jumps a minute
        # at a time (crossing the 2**30 ms ticks wrap on the way) and the loop keeps polling
        for minute in range(1, 361):
            run.call("advance", ms=60000)
            if minute % 30 == 0:
                queued += _queue(run, _alarm_events(1, len(queued)))
        st = run.status()
        assert st["online"] is False and st["outbox"] >= 12  # (+1 if its PUBACK was in flight)
        assert st["blocking_calls"] == 0
        run.call("net", up=True)
        _check_delivery(col, queued)
        ups = [m["up_ms"] for m in first_occurrences(col.events())]
        assert ups == sorted(ups) and ups[-1] >= 6 * 3600 * 1000
    finally:
        run.quit()
        col.close()
    _check_schemas(col)


def test_power_cut_during_outbox_writes(mosquitto, tmp_path):
    col = Collector(mosquitto.port)
    # cut points: inside the boot counter write, inside the first, second and later event
    # records, and at record boundaries (an event record is ~200 bytes)
    cuts = [5, 20, 60, 150, 260, 333, 500, 711]
    delivered_boots = 0
    for i, cut in enumerate(cuts):
        store = tmp_path / ("s%d" % i)
        dev = ("--dev", "sim/cut-%d" % i)  # one simulated device per cut point
        run = Runner(1, store, "--powercut", cut, *dev)  # port 1: nobody listens, events stay
        done = []
        for ev in _alarm_events(6, i * 10):
            r = run.event_or_cut(ev)
            if r is None:
                break
            done.append((r["boot"], r["seq"], ev["t"]))
        run.kill()
        # power back: a normal store on the same folder, network up
        run2 = Runner(mosquitto.port, store, *dev)
        try:
            if done:
                _check_delivery(col, done, dev[1])
                delivered_boots += 1
            wait_for(lambda: run2.status()["outbox"] == 0, 20, what="outbox drained")
            assert run2.status()["blocking_calls"] == 0
        finally:
            run2.quit()
    assert delivered_boots >= 4  # the cuts after ~250 bytes fall after at least one event
    col.close()
    _check_schemas(col)


def test_signed_commands_and_wall_time_over_a_real_broker(mosquitto, tmp_path):
    import json

    import paho.mqtt.client as mqtt

    from gasguard.commands import sign
    from fixtures.reporting import DEV, SntpServer

    key = bytes(range(32))
    ntp = SntpServer(1790000000)
    col = Collector(mosquitto.port)
    run = Runner(mosquitto.port, tmp_path / "store", "--ntp", "127.0.0.1:%d" % ntp.port)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="platform")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        wait_for(lambda: run.status()["time_synced"], 15, what="SNTP")
        queued = _queue(run, _alarm_events(1))
        _check_delivery(col, queued)
        ev = first_occurrences(col.events())[-1]
        assert 1790000000 <= ev["ts"] <= 1790000000 + 60 and "q" not in ev
        topic = "gasguard/%s/command" % DEV
        cmds = [sign(key, DEV, "c1", 1, 1790000000, "hush"),
                sign(key, DEV, "c2", 2, 1790000000, "open_valve"),
                sign(key, DEV, "c1", 1, 1790000000, "hush"),  # replay
                sign(bytes(32), DEV, "c3", 3, 1790000000, "self_test"),  # wrong key
                sign(key, DEV, "c4", 4, 1790000000 - 3600, "self_test"),  # stale
                sign(key, DEV, "c5", 5, 1790000000, "close_valve")]
        for c in cmds:
            pub.publish(topic, json.dumps(c), qos=1).wait_for_publish(5)
        wait_for(lambda: len(col.decoded("command_result")) >= len(cmds), 15,
                 what="command results")
        res = [(m["id"], m["ok"], m.get("reason")) for m in
               first_occurrences(col.decoded("command_result"))]
        assert res == [("c1", True, None), ("c2", False, "forbidden"), ("c1", False, "replay"),
                       ("c3", False, "bad_mac"), ("c4", False, "stale"), ("c5", True, None)]
        st = run.status()
        assert st["handler"] == ["hush", "close_valve"]
        assert st["cmd_accepted"] == 2 and st["cmd_rejected"] == 4
    finally:
        pub.loop_stop()
        pub.disconnect()
        run.quit()
        col.close()
        ntp.close()
    _check_schemas(col)


def test_tls_with_a_pinned_ca(tmp_path):
    from fixtures.reporting import make_tls_files

    ca_pem, ca_der, cert, key = make_tls_files(tmp_path)
    m = Mosquitto(tmp_path, tls=(ca_pem, cert, key)).start()
    import paho.mqtt.client as mqtt

    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-collector")
    sub.tls_set(ca_certs=ca_pem)
    sub.tls_insecure_set(True)  # the test certificate names mqtt.test, we dial 127.0.0.1
    sub.on_message = lambda c, u, msg: got.append(json.loads(msg.payload))
    sub.connect("127.0.0.1", m.port)
    sub.subscribe("gasguard/#", 1)
    sub.loop_start()
    run = Runner(m.port, tmp_path / "store", "--tls-ca", ca_der, "--sni", "mqtt.test")
    # a device with the wrong pinned CA must not connect
    other = tmp_path / "other"
    other.mkdir()
    bad_ca = make_tls_files(other)[1]
    bad = Runner(m.port, tmp_path / "store2", "--tls-ca", bad_ca, "--sni", "mqtt.test",
                 "--dev", "sim/bad-ca")
    try:
        queued = _queue(run, _alarm_events(3))
        wait_for(lambda: [(g["boot"], g["seq"]) for g in got if g.get("kind") in ("event", "valve")]
                 == [(b, s) for b, s, t in queued], 20, what="events over TLS")
        _queue(bad, _alarm_events(1))
        wait_for(lambda: bad.status()["conn_failures"] >= 2, 20, what="TLS refusals")
        st = bad.status()
        assert st["connects"] == 0 and st["outbox"] == 1
        assert run.status()["blocking_calls"] == 0 and bad.status()["blocking_calls"] == 0
        assert not any(g.get("dev") == "sim/bad-ca" for g in got)
    finally:
        run.quit()
        bad.quit()
        sub.loop_stop()
        sub.disconnect()
        m.stop()
