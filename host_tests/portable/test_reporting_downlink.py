"""Downlink under attack and misuse, through the whole Reporter (issue 15 findings 1, 3, 4).

- Command noise during a leak costs no event: unsigned garbage with every alarm is
  answered, counted, and delivery goes on (finding 1).
- A command that reaches the device live although it was published retained runs once,
  and the device clears the broker's retained copy (finding 3; against mosquitto in
  test_downlink_mosquitto.py).
- Losses survive a reboot and are reported in the state message until the platform
  acknowledges them with a signed ack_losses (finding 4).

- An event that meets a full heap stays queued and is delivered.

Portable: CPython, the pip MicroPython and the ESP32-like one at 112 KiB from .mpy.
"""

import json

from gasguard.commands import sign
from gasguard.mqtt import packet
from gasguard.outbox import Outbox
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from ptest import tmpdir
from reporting_fakes import AutoBroker, FakeNet
from simboard import SimClock

DEV = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(32))
NOW = 1790000000
IDENT = {"device_id": DEV, "fw": "0.1.0", "tier": "H", "kind": "detector"}
CFG = {"base": "gg", "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}
TOPIC = ("gg/%s/command" % DEV).encode()


class DigestBroker(AutoBroker):
    """An AutoBroker that keeps a digest of what it received: event seqs, command
    results (ok, reason, detail), the device's own command-topic publishes (payload,
    retain) and the last state message."""

    def __init__(self, net):
        AutoBroker.__init__(self, net)
        self.seqs = []
        self.results = []
        self.cmds = []
        self.state = None

    def service(self):
        AutoBroker.service(self)
        for topic, payload, qos, retain, dup in self.published:
            kind = topic[topic.rindex("/") + 1 :]
            if kind == "command":
                self.cmds.append((bytes(payload), retain))
            elif kind == "state":
                self.state = json.loads(payload)
            elif kind == "event":
                self.seqs.append(json.loads(payload)["seq"])
            elif kind == "command_result":
                m = json.loads(payload)
                self.results.append((m["ok"], m.get("reason"), m.get("detail")))
        self.published = []


class Handler:
    def __init__(self):
        self.calls = []

    def hush(self):
        self.calls.append("hush")


def _rep(d, net, clock, handler=None, cfg=CFG):
    return Reporter(clock, FileStore(d), IDENT, cfg, net, handler=handler or Handler(), key=KEY,
                    rand=lambda n: 0)


def _cmd(net, body, retain=False, pid=1):
    first = 0x32 | (1 if retain else 0)
    net.last.feed(packet(first, bytes([0, len(TOPIC)]) + TOPIC + bytes([pid >> 8, pid & 255])
                         + body))


def _run(r, clock, b, ms, escapes=None):
    for _ in range(ms // 10):
        try:
            r.poll()
        except Exception as e:  # what a loop that survives its pollers would see
            if escapes is None:
                raise
            escapes.append(type(e).__name__)
        b.service()
        clock.advance(10)


def test_command_noise_during_a_leak_costs_no_event():
    clock = SimClock()
    net = FakeNet()
    b = DigestBroker(net)
    r = _rep(tmpdir("dl1"), net, clock)
    _run(r, clock, b, 500)
    assert r.online
    noise = (b"[1]", b"{}", b"null", b'"x"', b"1e400")
    escapes = []
    sent = []
    for i in range(8):  # as in the campaign: 8 safety events, noise every 5 s
        sent.append(r.event({"event": "alarm", "gas": "ch4", "level": 1 + i % 2,
                             "state": "on" if i % 3 else "off"}))
        text = (b'{"v":1,"id":"n%d","cmd":"set_interval","args":{"seconds":%s},"ctr":%d,'
                b'"ts":%d,"mac":"%s"}' % (i, noise[i % 5], 100 + i, NOW, b"ab" * 32))
        _cmd(net, text, pid=10 + i)
        _run(r, clock, b, 5000, escapes)
    _run(r, clock, b, 2000, escapes)
    assert escapes == []
    assert b.seqs == sent  # every event, once each, in order
    assert b.results == [(False, "bad_mac", None)] * 8
    assert r.commands.rejected == 8 and r.status()["rx_dropped"] == 0


def test_a_live_retained_command_runs_once_and_the_retained_copy_is_cleared():
    clock = SimClock()
    net = FakeNet()
    b = DigestBroker(net)
    h = Handler()
    r = _rep(tmpdir("dl2"), net, clock, h)
    r.wall.set(NOW)
    _run(r, clock, b, 500)
    m = json.dumps(sign(KEY, DEV, "r1", 7, NOW, "hush")).encode()
    _cmd(net, m)  # published retained while we are connected: the broker clears the flag
    _run(r, clock, b, 200)
    assert h.calls == ["hush"]
    # the device deletes the retained copy: an empty retained message, QoS 0
    assert b.cmds == [(b"", True)]
    _cmd(net, b"", pid=2)  # the broker echoes it to us (we subscribe to the topic)
    # had the broker kept it anyway (an ACL refusing our clear, say), the next SUBSCRIBE
    # would deliver it with the retain flag: refused (host_tests/reporting/test_downlink_mosquitto.py
    # runs the whole story against mosquitto)
    _cmd(net, m, retain=True, pid=3)
    _run(r, clock, b, 200)
    assert h.calls == ["hush"]  # never twice
    # the echo is not answered; the retained delivery is refused
    assert b.results == [(True, None, None), (False, "malformed", "retained")]
    assert b.cmds == [(b"", True), (b"", True)]


def test_losses_survive_a_reboot_and_are_reported_until_acknowledged():
    d = tmpdir("dl3")
    clock = SimClock()
    cfg = {"base": "gg", "outbox_bytes": 1024, "outbox_reserve": 256,
           "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}
    # an outage longer than the outbox holds (the whole reporter offline, with reboots:
    # test_downlink_fuzz.py)
    ob = Outbox(FileStore(d), "outbox", 1024, 256)
    for i in range(30):
        ob.append(1, 2 * i + 1, 1, 1, b'{"seq":%d,"pad":"%s"}' % (2 * i + 1, b"x" * 40))
        ob.append(1, 2 * i + 2, 1, 0, b'{"seq":%d,"pad":"%s"}' % (2 * i + 2, b"y" * 40))
    lost, dropped = ob.lost_safety, ob.dropped
    assert lost > 0 and dropped > 0
    assert (ob.unacked_lost, ob.unacked_dropped) == (lost, dropped)
    ob = None
    # power cycle: since-boot counters restart, the losses do not
    ob = Outbox(FileStore(d), "outbox", 1024, 256)
    assert (ob.unacked_lost, ob.unacked_dropped, ob.lost_safety) == (lost, dropped, 0)
    ob = None
    # online: the state message carries them
    net = FakeNet()
    b = DigestBroker(net)
    r = _rep(d, net, clock, cfg=cfg)
    r.wall.set(NOW)
    _run(r, clock, b, 3000)
    assert b.state["losses"] == {"lost_safety": lost, "dropped_events": dropped}
    # a forged or partial ack changes nothing or only what it names
    forged = sign(b"x" * 32, DEV, "a0", 1, NOW, "ack_losses",
                  {"lost_safety": lost, "dropped_events": dropped})
    _cmd(net, json.dumps(forged).encode(), pid=4)
    _run(r, clock, b, 300)
    assert (r.outbox.unacked_lost, r.outbox.unacked_dropped) == (lost, dropped)
    ack = sign(KEY, DEV, "a1", 2, NOW, "ack_losses", {"lost_safety": lost, "dropped_events": 1})
    _cmd(net, json.dumps(ack).encode(), pid=5)
    _run(r, clock, b, 300)
    assert b.state["losses"] == {"lost_safety": 0, "dropped_events": dropped - 1}
    ack = sign(KEY, DEV, "a2", 3, NOW, "ack_losses",
               {"lost_safety": 0, "dropped_events": dropped - 1})
    _cmd(net, json.dumps(ack).encode(), pid=6)
    _run(r, clock, b, 300)
    assert "losses" not in b.state
    assert [x[0] for x in b.results] == [False, True, True], b.results
    # and an acknowledged loss stays acknowledged across a reboot
    r = b = net = None
    ob = Outbox(FileStore(d), "outbox", 1024, 256)
    assert (ob.unacked_lost, ob.unacked_dropped) == (0, 0)


def test_an_event_that_meets_a_full_heap_stays_queued_and_is_delivered():
    """Before: flush() popped the event, the outbox write raised MemoryError out of poll()
    (the app counts a poller error and goes on) and the alarm event was gone."""
    clock = SimClock()
    net = FakeNet()
    b = AutoBroker(net)
    r = _rep(tmpdir("dl4"), net, clock)
    real = r.outbox.append
    fails = [2]

    def tight_heap(*a):
        if fails[0]:
            fails[0] -= 1
            raise MemoryError("memory allocation failed")
        return real(*a)

    r.outbox.append = tight_heap
    seq = r.event({"event": "alarm", "gas": "co", "level": 2, "state": "on"})
    r.poll()  # no exception into the loop
    r.poll()
    assert len(r._pending) == 1 and len(r.outbox) == 0  # waiting in RAM
    _run(r, clock, b, 1000)
    assert [m["seq"] for m in b.messages("event")] == [seq]


class _Core:
    def __init__(self, **kw):
        for k in kw:
            setattr(self, k, kw[k])


def test_the_cores_counted_losses_are_in_the_state_counters():
    # events a detector or valve could not build (full heap) and a valve's link failures:
    # the platform is told in the state message's counters, like lost_safety
    for attr, core, want in (("detector", _Core(events_lost=3), {"events_lost": 3}),
                             ("controller", _Core(events_lost=2, link_errors=5),
                              {"events_lost": 2, "link_errors": 5}),
                             (None, None, {})):
        h = Handler()
        if attr:
            setattr(h, attr, core)
        clock = SimClock()
        net = FakeNet()
        b = DigestBroker(net)
        r = _rep(tmpdir("dl_lost"), net, clock, handler=h)
        _run(r, clock, b, 3000)
        c = b.state["counters"]
        assert {k: c[k] for k in ("events_lost", "link_errors") if k in c} == want, c
        assert r.status().get("events_lost") == want.get("events_lost")  # and in STATUS? parts
