"""The published protocol: schemas are valid, examples and every emitted message conform."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from gasguard import reporter
from gasguard.commands import sign
from gasguard.mqtt import packet
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from gasguard_tools import schemas
from reporting_fakes import AutoBroker, FakeNet
from simboard import SimClock

DEV = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(32))


def test_every_kind_has_a_valid_schema():
    for kind in reporter.KINDS + ("identity_down",):
        v = schemas.validator(kind)
        assert v.schema["$id"] == "urn:gasguard:schema:%d:%s" % (schemas.SCHEMA_MAJOR, kind)


@pytest.mark.parametrize("kind,path,msg", schemas.examples(), ids=lambda x: getattr(x, "name", None))
def test_examples_validate(kind, path, msg):
    assert schemas.check(kind, msg, strict=True) == []


@pytest.mark.parametrize("kind,path,msg", schemas.examples(), ids=lambda x: getattr(x, "name", None))
def test_published_schemas_accept_additive_fields(kind, path, msg):
    """A v1 device that adds a field stays valid for platforms (docs/protocol.md versioning);
    strict mode (our tests, monitor --strict) still names it."""
    m = json.loads(json.dumps(msg))
    m["x_added_in_v1_9"] = {"any": "thing"}
    if isinstance(m.get("data"), dict):
        m["data"]["x_added_too"] = 1
    assert schemas.check(kind, m) == []
    assert schemas.check(kind, m, strict=True) != []


def test_every_kind_has_an_example():
    kinds = {k for k, p, m in schemas.examples()}
    assert kinds >= set(reporter.KINDS) | {"identity_down"}


def _ex(name):
    return json.loads((schemas.EXAMPLES / (name + ".json")).read_text())


@pytest.mark.parametrize("kind,name,mutate", [
    ("event", "event.alarm_on", lambda m: m.pop("seq")),
    ("event", "event.alarm_on", lambda m: m.update(extra=1)),
    ("event", "event.alarm_on", lambda m: m["data"].update(gas="h2")),
    ("event", "event.alarm_on", lambda m: m["data"].pop("level")),
    ("event", "event.alarm_on", lambda m: m.update(event="relay")),  # belongs on valve
    ("event", "event.fault_on", lambda m: m["data"].pop("code")),
    ("event", "event.alarm_on", lambda m: m.update(v=2)),
    ("event", "event.alarm_on", lambda m: m.update(ts=12)),
    ("event", "event.alarm_on", lambda m: m.update(boot=0)),
    ("valve", "valve.relay_on", lambda m: m["data"].update(state="maybe")),
    ("state", "state.online", lambda m: m.update(reason="shutdown")),
    ("state", "state.offline_connection_lost", lambda m: m.pop("reason")),
    ("telemetry", "telemetry.periodic", lambda m: m.pop("dropped")),
    ("command", "command.hush", lambda m: m.update(cmd="open_valve")),
    ("command", "command.set_interval", lambda m: m["args"].update(seconds=5)),
    ("command", "command.hush", lambda m: m.update(args={"x": 1})),
    ("command", "command.ack_losses", lambda m: m.pop("args")),
    ("command", "command.ack_losses", lambda m: m["args"].update(lost_safety=-1)),
    ("command", "command.ack_losses", lambda m: m["args"].update(extra=1)),
    ("state", "state.online_after_outage", lambda m: m.update(losses={"lost_safety": 0,
                                                                      "dropped_events": 0})),
    ("state", "state.online_after_outage", lambda m: m["losses"].pop("dropped_events")),
    ("command_result", "command_result.ok", lambda m: m.pop("ctr")),
    ("command_result", "command_result.rejected_bad_mac", lambda m: m.update(reason="nope")),
])
def test_schemas_reject_broken_messages(kind, name, mutate):
    m = _ex(name)
    mutate(m)
    assert schemas.check(kind, m, strict=True) != []


def test_command_examples_carry_the_mac_the_protocol_describes():
    """docs/protocol.md: key = bytes 00..1f, device 88.118.8/GDH.240915.00123F."""
    n = 0
    for kind, path, m in schemas.examples():
        if kind == "command":
            want = sign(KEY, DEV, m["id"], m["ctr"], m["ts"], m["cmd"], m.get("args"))
            assert m["mac"] == want["mac"], path.name
            n += 1
    assert n >= 3


def test_topic_check_catches_mismatches():
    m = _ex("event.alarm_on")
    k, dev, msg, errs = schemas.check_topic("gasguard/%s/event" % DEV, json.dumps(m))
    assert (k, dev, errs) == ("event", DEV, [])
    assert schemas.check_topic("gasguard/other/x/event", json.dumps(m))[3]
    assert schemas.check_topic("gasguard/%s/valve" % DEV, json.dumps(m))[3]
    assert schemas.check_topic("gasguard/%s/event" % DEV, b"{not json")[3]
    assert schemas.check_topic("elsewhere/%s/event" % DEV, json.dumps(m))[3]


EVENTS = st.one_of(
    st.builds(lambda g, lv, s: {"event": "alarm", "gas": g, "level": lv, "state": s},
              st.sampled_from(["ch4", "co"]), st.sampled_from([1, 2]), st.sampled_from(["on", "off"])),
    st.builds(lambda c, s: {"event": "fault", "code": c, "state": s},
              st.sampled_from(["sensor_open", "supply_low", "link_lost"]), st.sampled_from(["on", "off"])),
    st.builds(lambda s: {"event": "relay", "state": s}, st.sampled_from(["on", "off"])),
    st.builds(lambda s: {"event": "valve", "state": s, "cause": "ch4_high"},
              st.sampled_from(["closing", "closed"])),
    st.just({"event": "ready"}),
    st.builds(lambda t: {"event": "hush", "state": "on", "seconds": t}, st.integers(1, 600)),
)
STEPS = st.lists(st.one_of(
    st.tuples(st.just("event"), EVENTS),
    st.tuples(st.just("telemetry"), st.dictionaries(
        st.sampled_from(["ch4_ppm_x10", "co_ppm_x10", "supply_mv", "rssi"]),
        st.integers(-100, 100000), max_size=4)),
    st.tuples(st.just("cmd"), st.sampled_from(["hush", "self_test", "report_now", "close_valve",
                                                "open_valve", "garbage", "set_interval"])),
    st.tuples(st.just("outage"), st.integers(0, 3)),
    st.tuples(st.just("sync"), st.just(None)),
    st.tuples(st.just("state"), st.dictionaries(st.sampled_from(["alarm", "valve"]),
                                                st.integers(0, 2), max_size=2)),
), max_size=25)


class _H:
    def hush(self):
        pass

    def self_test(self):
        pass

    def close_valve(self):
        pass


@settings(max_examples=40, deadline=None)
@given(steps=STEPS)
def test_every_message_the_reporter_emits_validates(tmp_path_factory, steps):
    d = tmp_path_factory.mktemp("rep")
    clock = SimClock()
    net = FakeNet()
    b = AutoBroker(net)
    r = Reporter(clock, FileStore(str(d)), {"device_id": DEV, "fw": "0.1.0", "tier": "H",
                                            "kind": "detector"},
                 {"mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100}}, net, handler=_H(), key=KEY,
                 rand=lambda n: 0)
    topic = ("gasguard/%s/command" % DEV).encode()
    ctr = 0
    for op, arg in steps:
        if op == "event":
            r.event(arg)
        elif op == "telemetry":
            r.telemetry(arg)
        elif op == "state":
            r.state(arg)
        elif op == "sync":
            r.wall.set(1790000000)
        elif op == "outage" and net.last is not None:
            net.last.peer_closed = True
        elif op == "cmd" and r.online:
            ctr += 1
            body = b"garbage" if arg == "garbage" else json.dumps(
                sign(KEY, DEV, "c%d" % ctr, ctr, 1790000000, arg,
                     {"seconds": 60} if arg == "set_interval" else None)).encode()
            net.last.feed(packet(0x32, bytes([0, len(topic)]) + topic + b"\x00\x01" + body))
        for _ in range(20):
            r.poll()
            b.service()
            clock.advance(50)
    for _ in range(100):
        r.poll()
        b.service()
        clock.advance(50)
    for t, p, q, rt, dup in b.published:
        kind, dev, msg, errs = schemas.check_topic(t, p, strict=True)
        assert errs == [], (t, p, errs)
        if kind == "command":  # the only device -> command publish: clearing it, retained
            assert p == b"" and rt and q == 0
            continue
        assert q == reporter.delivery(kind)[0]  # the QoS table is the code's truth
    wt, wp, wq, wr = r.mqtt.will()
    assert schemas.check_topic(wt, wp, strict=True)[3] == []
    # every event was delivered (at least once)
    assert len(r.outbox) == 0
