"""The Reporter: telemetry ring, downlink commands, configuration errors."""

from reporting_fakes import AutoBroker  # first: compiling it needs the most heap
from gasguard.reporter import Reporter
from gasguard.commands import sign

import json

from gasguard.mqtt import packet
from gasguard.store import FileStore
from gasguard.validate import ConfigError
from ptest import raises, tmpdir
from simboard import SimClock
from reporter_rig import ALARMS, DEV, IDENT, reporter, run as _run

KEY = b"\x01" * 32
CFG = {"base": "gg", "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}


class Handler:
    def __init__(self):
        self.calls = []

    def hush(self):
        self.calls.append("hush")


def _rep(tag, cfg=CFG, **kw):
    return reporter(tag, cfg, **kw)[:3]


def test_downlink_command_is_executed_and_answered():
    h = Handler()
    r, clock, net = _rep("rp6", handler=h, key=KEY)
    b = AutoBroker(net)
    _run(r, clock, b, 200)
    cmd = json.dumps(sign(KEY, DEV, "c1", 1, 0, "hush")).encode()
    topic = ("gg/" + DEV + "/command").encode()
    net.last.feed(packet(0x32, bytes([0, len(topic)]) + topic + b"\x00\x07" + cmd))
    net.last.feed(packet(0x32, bytes([0, len(topic)]) + topic + b"\x00\x08" + b"garbage"))
    _run(r, clock, b, 300)
    assert h.calls == ["hush"]
    res = b.messages("command_result")
    assert [(m["id"], m["ok"], m.get("reason")) for m in res] == [("c1", True, None),
                                                                  (None, False, "malformed")]
    # report_now and set_interval are handled by the reporter itself
    net.last.feed(packet(0x30, bytes([0, len(topic)]) + topic
                         + json.dumps(sign(KEY, DEV, "c2", 2, 0, "set_interval",
                                           {"seconds": 120})).encode()))
    _run(r, clock, b, 300)
    assert r.interval_s == 120


def test_bad_config_and_identity_are_refused():
    raises(ConfigError, _rep, "rp8", cfg={"base": "a/+/b"})
    raises(ConfigError, _rep, "rp8", cfg={"bsae": "x"})
    raises(ConfigError, Reporter, SimClock(), FileStore(tmpdir("rp9")), {"device_id": "x"}, {}, None)
    raises(ValueError, Reporter(SimClock(), FileStore(tmpdir("rp10")), IDENT, CFG, None).event,
           {"gas": "ch4"})


def test_no_network_means_events_stay_in_the_outbox():
    r = Reporter(SimClock(), FileStore(tmpdir("rp11")), IDENT, CFG, None)
    r.event(ALARMS[0])
    r.poll()
    assert len(r.outbox) == 1 and r.status()["mqtt"] == "none"
