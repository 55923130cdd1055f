"""The embedded broker (gasguard sim) and `gasguard monitor`, against paho and the firmware."""

import io
import json
import os
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT
from gasguard_tools.broker import Broker, topic_matches, valid_filter
from gasguard_tools.cmd_monitor import Printer, parse_broker
from gasguard_tools import schemas
from gasguard_tools.runtime import ToolError
from fixtures.reporting import Collector, Runner, first_occurrences, wait_for


@pytest.fixture
def embedded():
    b = Broker("127.0.0.1", 0)
    port = b.start_in_thread()
    yield b, port
    b.stop()


@pytest.mark.parametrize("filt,topic,ok", [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "a/b", True), ("+/+", "a/b", True), ("+", "a/b", False),
    ("a/+/c", "a/x/c", True), ("a/+/c", "a/x/d", False), ("#", "$SYS/x", False),
])
def test_topic_filters(filt, topic, ok):
    assert topic_matches(filt, topic) is ok


def test_bad_filters_are_refused():
    assert not valid_filter("a/#/b") and not valid_filter("a+") and not valid_filter("")
    assert valid_filter("a/+/#")


def _client(port, cid, will=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    got = []
    c.on_message = lambda cl, u, m: got.append((m.topic, bytes(m.payload), m.retain, m.qos))
    if will:
        c.will_set(*will)
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    return c, got


def test_qos1_retained_wildcards_and_last_will(embedded):
    b, port = embedded
    sub, got = _client(port, "sub")
    sub.subscribe([("x/+/state", 1), ("x/#", 0)])
    time.sleep(0.2)
    pub, _ = _client(port, "pub", will=("x/dev/state", b"offline", 1, True))
    info = pub.publish("x/dev/state", b"online", qos=1, retain=True)
    info.wait_for_publish(5)
    wait_for(lambda: len(got) >= 1, 5, what="delivery")
    assert ("x/dev/state", b"online", False, 1) in got
    # a late subscriber gets the retained message, flagged retained
    late, got2 = _client(port, "late")
    late.subscribe("x/+/state", 1)
    wait_for(lambda: got2, 5, what="retained")
    assert got2[0][:3] == ("x/dev/state", b"online", True)
    # the publisher dies without DISCONNECT: its will is published and retained
    pub._sock.close()
    wait_for(lambda: any(p == b"offline" for t, p, r, q in got2), 10, what="will")
    assert b.retained["x/dev/state"][0] == b"offline"
    # a graceful disconnect does not fire the will
    pub2, _ = _client(port, "pub2", will=("x/dev2/state", b"gone", 1, False))
    time.sleep(0.1)
    pub2.disconnect()
    time.sleep(0.3)
    assert not any(t == "x/dev2/state" for t, p, r, q in got2 + got)
    for c in (sub, late):
        c.loop_stop()
        c.disconnect()


def test_firmware_client_reports_through_the_embedded_broker(embedded, tmp_path):
    b, port = embedded
    col = Collector(port)
    run = Runner(port, tmp_path / "store")
    try:
        queued = []
        for i in range(5):
            r = run.event({"event": "alarm", "gas": "co", "level": 1, "state": "on" if i % 2 == 0 else "off",
                           "t": i})
            queued.append((r["boot"], r["seq"]))
        wait_for(lambda: [(m["boot"], m["seq"]) for m in first_occurrences(col.events())] == queued,
                 20, what="events via the embedded broker")
        wait_for(lambda: run.status()["outbox"] == 0, 10, what="PUBACKs")
        assert run.status()["blocking_calls"] == 0
    finally:
        run.quit()
        col.close()
    with col.lock:
        for t, p, r in col.msgs:
            assert schemas.check_topic(t, p, strict=True)[3] == []


def test_monitor_prints_decoded_lines_and_flags_invalid_messages():
    out = io.StringIO()
    pr = Printer("gasguard", out=out)
    for kind, path, m in schemas.examples():
        dev = m.get("dev") or m.get("id") or "88.118.8/GDH.240915.00123F"
        pr.handle("gasguard/%s/%s" % (dev, kind), json.dumps(m).encode())
    text = out.getvalue()
    assert "ALARM ch4 level 1 ON" in text
    assert "FAULT sensor_open ON" in text
    assert "OFFLINE (connection_lost)" in text
    assert "REJECTED: bad_mac" in text
    assert "INVALID" not in text and pr.invalid == 0
    bad = dict(json.loads((schemas.EXAMPLES / "event.alarm_on.json").read_text()))
    bad["data"]["gas"] = "h2"
    pr.handle("gasguard/%s/event" % bad["dev"], json.dumps(bad).encode())
    pr.handle("gasguard/%s/event" % bad["dev"], json.dumps(bad).encode())
    assert "!! INVALID" in out.getvalue() and pr.invalid == 2
    assert "dup" in out.getvalue().splitlines()[-2]


def test_monitor_json_mode_and_cli(embedded):
    b, port = embedded
    out = io.StringIO()
    pr = Printer("gasguard", as_json=True, out=out)
    m = json.loads((schemas.EXAMPLES / "telemetry.periodic.json").read_text())
    pr.handle("gasguard/%s/telemetry" % m["dev"], json.dumps(m).encode())
    d = json.loads(out.getvalue())
    assert d["valid"] is True and d["topic"].endswith("/telemetry") and d["data"] == m["data"]
    with pytest.raises(ToolError):
        parse_broker("nohost")
    # the real command line, against the embedded broker
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    p = subprocess.Popen([sys.executable, "-m", "gasguard_tools.cli", "monitor", "--broker",
                          "127.0.0.1:%d" % port, "--count", "1", "--timeout", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    pub, _ = _client(port, "p")
    for _ in range(40):
        pub.publish("gasguard/%s/telemetry" % m["dev"], json.dumps(m), qos=1).wait_for_publish(5)
        try:
            p.wait(0.25)
            break
        except subprocess.TimeoutExpired:
            pass
    outp, err = p.communicate(timeout=20)
    pub.loop_stop()
    assert p.returncode == 0, err
    assert b"TELEMETRY" in outp and b"ch4 123.4 ppm" in outp


def test_missing_mosquitto_skips_or_fails_under_ci(monkeypatch):
    from fixtures import reporting as rf

    monkeypatch.setattr(rf.shutil, "which", lambda name: None)
    monkeypatch.setattr(rf.os.path, "exists", lambda p: False)
    monkeypatch.delenv("GASGUARD_REQUIRE_BROKER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="mosquitto"):
        rf.mosquitto_bin()
    monkeypatch.setenv("GASGUARD_REQUIRE_BROKER", "1")
    with pytest.raises(pytest.fail.Exception, match="GASGUARD_REQUIRE_BROKER=1"):
        rf.mosquitto_bin()


@pytest.mark.parametrize("garbage", [
    b"\x10\x02\x00",  # CONNECT cut short
    b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00" + b"\x30\x01\x00",  # short PUBLISH
    b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00" + b"\x82\x05\x00\x01\x00\x09a",  # bad SUBSCRIBE
    b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00" + b"\x30\x05\x00\x02\xff\xfex",  # bad UTF-8
    b"\xff\xff\xff\xff\xff",
])
def test_malformed_clients_are_dropped_and_the_broker_keeps_serving(embedded, garbage):
    import socket as so

    b, port = embedded
    s = so.create_connection(("127.0.0.1", port), 2)
    s.sendall(garbage)
    s.settimeout(1)
    try:
        while s.recv(100):
            pass  # the broker closes it (after a CONNACK when the CONNECT was fine),
            # or waits for the rest of a cut packet (then our 1 s timeout ends this)
    except OSError:
        pass
    s.close()
    c, got = _client(port, "after")
    c.subscribe("x/y", 1)
    time.sleep(0.2)
    c.publish("x/y", b"ok", qos=1).wait_for_publish(5)
    wait_for(lambda: got, 5, what="broker still serving")
    c.loop_stop()
    c.disconnect()
