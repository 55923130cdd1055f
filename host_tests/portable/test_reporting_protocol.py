"""Protocol helpers: base topics, kinds, the JSON-data check, compact encoding."""

import json

from gasguard.report_cfg import valid_base
from gasguard.reporter import KINDS, SAFETY, Reporter, delivery, encode, plain
from gasguard.store import FileStore
from ptest import tmpdir
from simboard import SimClock

DEV = "88.118.8/GDH.240915.00123F"


def test_base_topics_and_topics():
    for ok in ("gasguard", "acme/gas/v1", "a"):
        assert valid_base(ok), ok
    for bad in ("", "/a", "a/", "a//b", "a/+/b", "a/#", "x" * 129, None, 5, "a\x00b"):
        assert not valid_base(bad), bad
    r = Reporter(SimClock(), FileStore(tmpdir("pr1")), {"device_id": DEV, "fw": "1"},
                 {"base": "gg", "commands": False}, None)
    assert r.topic("event") == "gg/88.118.8/GDH.240915.00123F/event"


def test_event_kinds_and_safety_classes():
    r = Reporter(SimClock(), FileStore(tmpdir("pr2")), {"device_id": DEV, "fw": "1"},
                 {"commands": False}, None)
    for name in ("alarm", "fault", "valve", "interlock", "relay", "ready", "hush"):
        r.event({"event": name})
    r.flush()
    kinds = [KINDS[e[2]] for e in r.outbox.entries]
    prios = [e[3] for e in r.outbox.entries]
    assert kinds == ["event", "event", "valve", "valve", "valve", "event", "event"]
    assert prios == [0, 0, 0, 0, 0, 1, 1]  # safety events: priority 0 (kept longest)
    assert SAFETY == ("alarm", "fault", "valve", "interlock", "relay")
    for kind in KINDS:
        qos, retain = delivery(kind)
        assert qos == (0 if kind == "telemetry" else 1)
        assert retain == (kind == "state")


def test_plain_json_data_check():
    assert plain({"a": [1, 2.5, "x", None, True, {"b": (1, 2)}]})
    assert not plain({"a": {1, 2}})
    assert not plain({1: "int key"})
    assert not plain({"a": b"bytes"})
    assert not plain({"a": [[[[["too deep"]]]]]})


def test_encoding_is_compact_json_with_the_envelope():
    r = Reporter(SimClock(), FileStore(tmpdir("pr3")), {"device_id": "a/b", "fw": "1"},
                 {"commands": False}, None)
    seq = r.event({"event": "alarm", "gas": "co", "level": 1, "state": "on"})
    r.flush()
    b = bytes(r.outbox.message(r.outbox.entries[-1]))
    assert b" " not in b and json.loads(encode(json.loads(b))) == json.loads(b)
    d = json.loads(b)
    assert d["boot"] == r.boot and d["seq"] == seq and "ts" not in d and d["data"]["gas"] == "co"
    assert d["event"] == "alarm" and "event" not in d["data"] and d["q"] == ["time_unsynced"]
    assert (d["v"], d["kind"], d["dev"], d["fw"]) == (1, "event", "a/b", "1")
