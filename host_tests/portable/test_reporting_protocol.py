"""Protocol helpers: base topics, kinds, the JSON-data check, compact encoding."""

import json

from gasguard import protocol
from gasguard.report_cfg import valid_base


def test_base_topics_and_topics():
    for ok in ("gasguard", "acme/gas/v1", "a"):
        assert valid_base(ok), ok
    for bad in ("", "/a", "a/", "a//b", "a/+/b", "a/#", "x" * 129, None, 5, "a\x00b"):
        assert not valid_base(bad), bad
    assert protocol.topic("gg", "88.118.8/GDH.240915.00123F", "event") == \
        "gg/88.118.8/GDH.240915.00123F/event"


def test_event_kinds_and_safety_classes():
    assert protocol.kind_of_event("alarm") == "event"
    assert protocol.kind_of_event("fault") == "event"
    for name in ("valve", "interlock", "relay"):
        assert protocol.kind_of_event(name) == "valve"
        assert protocol.is_safety(name)
    assert protocol.is_safety("alarm") and protocol.is_safety("fault")
    assert not protocol.is_safety("ready") and not protocol.is_safety("hush")
    for kind in protocol.DELIVERY:
        qos, retain = protocol.DELIVERY[kind]
        assert qos == (0 if kind == "telemetry" else 1)
        assert retain == (kind == "state")


def test_plain_json_data_check():
    assert protocol.plain({"a": [1, 2.5, "x", None, True, {"b": (1, 2)}]})
    assert not protocol.plain({"a": {1, 2}})
    assert not protocol.plain({1: "int key"})
    assert not protocol.plain({"a": b"bytes"})
    assert not protocol.plain({"a": [[[[["too deep"]]]]]})


def test_encoding_is_compact_json():
    m = protocol.envelope("event", {"device_id": "a/b", "fw": "1"}, 3, 7, 1234, None,
                          ["time_unsynced"])
    protocol.event_body(m, {"event": "alarm", "gas": "co", "level": 1, "state": "on"})
    b = protocol.encode(m)
    assert b" " not in b
    d = json.loads(b)
    assert d["boot"] == 3 and d["seq"] == 7 and "ts" not in d and d["data"]["gas"] == "co"
    assert d["event"] == "alarm" and "event" not in d["data"]
