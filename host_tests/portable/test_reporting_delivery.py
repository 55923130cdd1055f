"""The Reporter end to end over a strict fake network: order, outages, reboots, commands."""

import json

from gasguard.reporter import Reporter
from gasguard.store import FileStore
from reporting_fakes import AutoBroker
from reporter_rig import ALARMS, DEV, IDENT, reporter, run as _run

CFG = {"base": "gg", "commands": False, "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}


def _rep(tag, net=None, clock=None, d=None, **kw):
    """A Reporter on a FakeNet, a SimClock and a FileStore (commands off; on in
    test_reporting_command_and_config)."""
    return reporter(tag, kw.pop("cfg", CFG), net, clock, d, **kw)


def test_events_are_delivered_in_order_with_the_envelope_and_then_forgotten():
    r, clock, net, d = _rep("rp1")
    b = AutoBroker(net)
    for ev in ALARMS:
        r.event(ev)
    _run(r, clock, b)
    evs = [m for m in b.messages() if m["kind"] in ("event", "valve")]
    assert [(m["event"], m["data"].get("state")) for m in evs] == [
        ("alarm", "on"), ("alarm", "on"), ("relay", "on"), ("alarm", "off")]
    seqs = [m["seq"] for m in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    for m in evs:
        assert m["v"] == 1 and m["dev"] == DEV and m["fw"] == "0.1.0" and m["boot"] == 1
        assert isinstance(m["up_ms"], int) and "ts" not in m and "time_unsynced" in m["q"]
    topics = [t for t, p, q, rt, dup in b.published if q == 1 and not rt]
    assert topics[2] == "gg/" + DEV + "/valve" and topics[0] == "gg/" + DEV + "/event"
    assert len(r.outbox) == 0
    assert len(Reporter(clock, FileStore(d), IDENT, CFG, None).outbox) == 0


def test_state_is_retained_online_and_the_will_says_offline():
    r, clock, net, d = _rep("rp2")
    b = AutoBroker(net)
    r.state({"alarm": 0})
    _run(r, clock, b, 200)
    st = [(t, json.loads(p), rt) for t, p, q, rt, dup in b.published if t.endswith("/state")]
    assert st and st[0][2] is True and st[0][1]["online"] is True
    assert st[0][1]["status"] == {"alarm": 0}
    wt, wp, wq, wr = r.mqtt.will()
    assert wt == "gg/" + DEV + "/state" and wq == 1 and wr is True
    assert json.loads(wp)["online"] is False


def test_outage_queues_events_and_delivers_them_in_order_after_reconnect():
    r, clock, net, d = _rep("rp3")
    b = AutoBroker(net)
    _run(r, clock, b, 200)
    assert r.online
    net.last.peer_closed = True  # broker gone
    net.mode = "refused"
    _run(r, clock, b, 200)
    assert not r.online
    for ev in ALARMS:
        r.event(ev)
    for _ in range(50):  # an hour of simulated outage, polled every 72 s
        r.poll()
        clock.advance(72000)
    assert len(r.outbox) == 4
    net.mode = "ok"
    _run(r, clock, b, 3000)
    assert r.online and len(r.outbox) == 0
    got = [m for m in b.messages() if m["kind"] in ("event", "valve")]
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)
    assert len(got) == 4


def test_unacked_messages_are_resent_with_dup_after_reconnect_and_survive_reboot():
    r, clock, net, d = _rep("rp4")
    b = AutoBroker(net)
    b.ack = False  # broker takes messages but PUBACK never comes
    s1 = r.event(ALARMS[0])
    _run(r, clock, b, 300)
    assert len(r.outbox) == 1
    net.last.peer_closed = True
    _run(r, clock, b, 2000)
    dups = [dup for t, p, q, rt, dup in b.published if t.endswith("/event")]
    assert dups[0] is False and True in dups[1:]
    # reboot before any PUBACK: the message is still there, boot count moved on
    r2, clock, net2, d = _rep("rp4", d=d, clock=clock)
    assert r2.boot == 2 and r2.outbox.keys() == [(1, s1)]
    b2 = AutoBroker(net2)
    s2 = r2.event(ALARMS[1])
    _run(r2, clock, b2, 500)
    got = [(m["boot"], m["seq"]) for m in b2.messages("event")]
    assert got == [(1, s1), (2, s2)]
    assert [dup for t, p, q, rt, dup in b2.published if t.endswith("/event")] == [True, False]
    assert len(r2.outbox) == 0
