"""Fuzz and fault suite for the downlink and the outbox (issue 15 item 6, device side).

- The downlink command parser (Commands.handle): arbitrary bytes, arbitrary JSON values
  and mutations of a correctly signed command never raise, never run anything unless the
  command is exactly one that was signed, and always answer with a documented reason.
- The MQTT packet parser (MQTTClient receive path): arbitrary bytes, and streams of
  well-formed packets of any size cut into arbitrary chunks, never raise; every PUBLISH
  within max_packet is delivered in order, oversized ones are acknowledged and skipped
  without dropping the connection; the receive buffer stays bounded.
- Power cuts at every byte of a script of outbox operations that drops, refuses, loses
  safety events, acknowledges losses and removes every message (tombstones and the
  compaction rewrite): after each cut the reopened outbox is exactly its state before or
  after the operation that was cut, loss counters included.
- An offline run of more than the outbox holds, with reboots in the middle: every safety
  event is delivered or counted in losses, across the reboots, and reported until acked.

Long mode: GASGUARD_FUZZ_EXAMPLES=5000 (default 200) raises the hypothesis budget and
runs the power cuts on a full-size outbox.
"""

import json
import os
import shutil
import struct
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from gasguard.commands import Commands, sign
from gasguard.mqtt import MQTTClient
from gasguard.mqtt import packet
from gasguard.outbox import Outbox
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from gasguard.reporter import WallTime
from reporting_fakes import AutoBroker, FakeNet, run_until_up
from simboard import PowerCutStore, SimClock
from test_reporting_commands import Handler

EXAMPLES = int(os.environ.get("GASGUARD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
KEY = bytes(range(32))
DEV = "88.118.8/GDH.240915.00123F"
NOW = 1790000000
REASONS = {"malformed", "bad_mac", "replay", "stale", "unknown_command", "forbidden",
           "bad_args", "unsupported", "store_failed", "handler_error"}


def _commands(tmp):
    clock = SimClock()
    wall = WallTime(clock)
    wall.set(NOW)
    h = Handler()
    return Commands(DEV, KEY, FileStore(tmp), h, wall, 300, {"ack_losses": lambda a, b: None}), h


def _answer_ok(r):
    assert isinstance(r, dict) and isinstance(r["ok"], bool)
    if not r["ok"]:
        assert r["reason"] in REASONS, r
        assert len(r.get("detail", "")) <= 200
    json.dumps(r)  # the answer is always publishable


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=20)


@FUZZ
@given(data=st.binary(max_size=700))
def test_arbitrary_bytes_are_answered_never_raised(tmp_path_factory, data):
    c, h = _commands(str(tmp_path_factory.mktemp("fz")))
    r = c.handle(data)
    _answer_ok(r)
    assert not r["ok"] and h.calls == [] and c.last_ctr == 0


SIGNED = st.sampled_from([
    ("hush", None), ("self_test", None), ("close_valve", None), ("set_interval", {"seconds": 60}),
    ("ack_losses", {"lost_safety": 3, "dropped_events": 4}), ("open_valve", None),
])
FIELDS = ("v", "id", "cmd", "args", "ctr", "ts", "mac", "extra")


@FUZZ
@given(signed=SIGNED, changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2), retained=st.booleans())
def test_mutated_signed_commands_run_only_when_untouched(tmp_path_factory, signed, changes, drop,
                                                         retained):
    c, h = _commands(str(tmp_path_factory.mktemp("fz")))
    cmd, args = signed
    good = sign(KEY, DEV, "c-1", 7, NOW, cmd, args)
    m = dict(good)
    m.update(changes)
    for k in drop:
        m.pop(k, None)
    try:
        payload = json.dumps(m).encode()
    except ValueError:
        return
    r = c.handle(payload, retained)
    _answer_ok(r)
    if r["ok"]:
        assert not retained and cmd != "open_valve"
        # only changes the MAC does not cover and the parser accepts may pass: a no-op
        # "v" of 1, an "args" equal after canonicalisation, a re-stated field
        assert {k: m.get(k) for k in ("id", "cmd", "ctr", "ts", "mac")} == \
            {k: good.get(k) for k in ("id", "cmd", "ctr", "ts", "mac")}
        assert c.last_ctr == 7
    else:
        assert h.calls == [] and c.last_ctr == 0


@FUZZ
@given(value=JSON, cmd=st.sampled_from(["set_interval", "ack_losses"]),
       key=st.sampled_from(["seconds", "lost_safety", "dropped_events", "x"]))
def test_any_argument_value_is_answered_never_raised(tmp_path_factory, value, cmd, key):
    c, h = _commands(str(tmp_path_factory.mktemp("fz")))
    for mac in ("ab" * 32, sign(KEY, DEV, "c-2", 9, NOW, cmd, {key: value})["mac"]):
        m = sign(KEY, DEV, "c-2", 9, NOW, cmd, {key: 60})
        m["args"] = {key: value}
        m["mac"] = mac
        r = c.handle(json.dumps(m).encode())
        _answer_ok(r)


# ---- the MQTT receive path --------------------------------------------------------------

def _up_client(max_packet=512):
    clock = SimClock()
    net = FakeNet()
    cl = MQTTClient(clock, net, {"host": "10.0.0.5", "client_id": "fz", "max_packet": max_packet},
                    rand=lambda n: 0)
    got = []
    cl.on_message = lambda t, p, r: got.append((t, None if p is None else bytes(p)))
    run_until_up(cl, clock)
    return cl, clock, got


def _feed_in_chunks(cl, data, cuts):
    sock = cl._sock  # the broker's end of this connection (None on the client once closed)
    pos = 0
    for n in cuts:
        sock.feed(data[pos : pos + n])
        pos += n
        for _ in range(8):
            cl.poll()
            assert len(cl._rx) <= cl.max_packet + 512  # bounded, whatever arrives
    sock.feed(data[pos:])
    for _ in range(len(data) // 512 + 8):
        cl.poll()


@FUZZ
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(1, 700), max_size=8))
def test_arbitrary_bytes_from_the_broker_never_raise(data, cuts):
    cl, clock, got = _up_client()
    _feed_in_chunks(cl, data, cuts)
    assert cl.state_name() in ("up", "down")
    if not cl.connected:
        assert cl.failures == 1 and cl.last_error


PUBLISH = st.tuples(st.sampled_from([b"gg/c", b"gg/identity_down", b"\xff\xfe"]),
                    st.integers(0, 1500), st.sampled_from([0, 1]), st.booleans())


@FUZZ
@given(pubs=st.lists(PUBLISH, min_size=1, max_size=6), cuts=st.lists(st.integers(1, 700), max_size=10),
       extras=st.lists(st.sampled_from([b"\xd0\x00", b"\x90\x03\x00\x01\x01", b"\x40\x02\x00\x63"]),
                       max_size=3))
def test_publish_streams_of_any_size_are_delivered_or_skipped(pubs, cuts, extras):
    cl, clock, got = _up_client(max_packet=512)
    stream = b""
    want = []
    for i, (topic, size, qos, retain) in enumerate(pubs):
        body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", i + 1) if qos else b"")
        payload = bytes([48 + i % 10]) * size
        pk = packet(0x30 | (qos << 1) | int(retain), body + payload)
        stream += pk + (extras[i % len(extras)] if extras else b"")
        if len(pk) > 512:
            want.append(None)
        else:
            want.append(payload)
    _feed_in_chunks(cl, stream, cuts)
    assert cl.connected, cl.last_error
    # a non-UTF-8 topic is counted by the handler path (decode fails), not delivered
    delivered = [p for t, p in got]
    expect = [w for w, (topic, s, q, r) in zip(want, pubs) if topic != b"\xff\xfe"]
    assert delivered == expect
    assert cl.rx_dropped == sum(1 for w, p in zip(want, pubs) if w is None or p[0] == b"\xff\xfe")
    acks = [b for f, b in cl._sock.take() if f == 0x40]
    assert cl.failures == 0
    assert acks == [struct.pack("!H", i + 1) for i, p in enumerate(pubs) if p[2]]


# ---- power cuts: outbox and loss counters --------------------------------------------------

# CI size; the long mode (GASGUARD_FUZZ_EXAMPLES >= 1000) uses the reporter's smallest
# configurable outbox, where emptying it takes the COMPACT_EMPTY_AT branch (>10 min)
LONG = EXAMPLES >= 1000
LIMIT, RESERVE, PAD = (1024, 256, 50) if LONG else (256, 64, 8)


def _msg(i, n=PAD):
    return b'{"n":%d,"p":"%s"}' % (i, b"x" * n)


def _ops():
    """A scripted life of an outbox: every kind of write it makes. (name, fn(ob))."""
    ops = []
    seq = [0]

    def append(prio, n=PAD):
        seq[0] += 1
        s = seq[0]
        return ("append", lambda ob: ob.append(1, s, 1, prio, _msg(s, n)))

    k = 3 if not LONG else LIMIT // 100
    for i in range(k):
        ops.append(append(i % 2))
    for i in range(2 * k):
        ops.append(append(1))  # non-safety drops: rewrites carrying the L-record
    for i in range(3 * k):
        ops.append(append(0))  # safety fills the reserve: lost_safety, first kept
    ops.append(append(1, 3 * PAD))  # refused: an L-record append
    ops.append(("ack_losses", lambda ob: ob.ack_losses(2, 3)))
    ops.append(("ack_all", None))  # expanded below: one op per removal
    ops.append(append(0))
    ops.append(("ack_losses", lambda ob: ob.ack_losses(1000, 1000)))
    return ops


def _play(d, budget):
    """Run the script on a PowerCutStore; return (store, index of the op during which the
    power went or None)."""
    st = PowerCutStore(d, budget=budget)
    ob = Outbox(st, "outbox", LIMIT, RESERVE)
    i = 0
    for name, fn in _ops():
        if name == "ack_all":
            for k in ob.keys():
                ob.ack(*k)
                if ob.store_errors:
                    return st, i
                i += 1
            continue
        fn(ob)
        if ob.store_errors:
            return st, i
        i += 1
    return st, None


def _flash_state(d):
    ob = Outbox(FileStore(d), "outbox", LIMIT, RESERVE)
    return ob.keys(), [bytes(ob.message(e)) for e in ob.entries], ob.unacked_lost, ob.unacked_dropped


def test_power_cut_at_every_byte_of_outbox_and_loss_counter_writes():
    base = tempfile.mkdtemp(prefix="gg-obcut-")
    try:
        # the reference run: the state on flash after every operation
        ref = base + "/ref"
        st = PowerCutStore(ref)
        ob = Outbox(st, "outbox", LIMIT, RESERVE)
        states = [_flash_state(ref)]
        lost_seen = False
        for name, fn in _ops():
            if name == "ack_all":
                for k in ob.keys():
                    ob.ack(*k)
                    states.append(_flash_state(ref))
                continue
            fn(ob)
            lost_seen = lost_seen or ob.lost_safety > 0
            states.append(_flash_state(ref))
        total = st.written
        assert lost_seen and ob.dropped > 0 and ob.store_errors == 0
        emptied = [s for s in states if not s[0]]
        assert emptied[-1][2] or emptied[-1][3]  # all removed, losses still unacked
        assert states[-1][2:] == (0, 0) and len(states[-1][0]) == 1
        assert os.path.getsize(ref + "/outbox") < 100 + PAD  # the removals compacted the log
        assert any(s[2] and s[3] for s in states)  # losses were on flash at some point
        points = 0
        for budget in range(total):
            d = base + "/c"
            st2, at = _play(d, budget)
            assert at is not None, budget  # the power did go during some operation
            got = _flash_state(d)
            # atomic per operation: what was on flash before it, or after it
            assert got in (states[at], states[at + 1]), (budget, at, got[0], got[2:])
            # and the repaired log keeps working
            ob2 = Outbox(FileStore(d), "outbox", LIMIT, RESERVE)
            ob2.append(9, 1, 1, 0, b"after")
            assert _flash_state(d)[0][-1] == (9, 1)
            shutil.rmtree(d)
            points += 1
        print("power-cut points:", points)
        assert points == total > 1000
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---- an offline run longer than the outbox, with reboots ---------------------------------------

def test_offline_beyond_the_outbox_with_reboots_counts_every_loss_and_reports_it(tmp_path):
    d = str(tmp_path)
    clock = SimClock()
    cfg = {"mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}
    ident = {"device_id": DEV, "fw": "0.1.0", "tier": "H", "kind": "detector"}

    def boot(net):
        return Reporter(clock, FileStore(d), ident, cfg, net, key=KEY, rand=lambda n: 0)

    emitted = []  # (boot, seq) of every safety event
    others = 0
    for part in range(3):  # 120 alarms over three boots, never online
        r = boot(FakeNet("unreachable"))
        for i in range(40):
            emitted.append((r.boot, r.event({"event": "alarm", "gas": "ch4", "level": 1 + i % 2,
                                               "state": "on" if i % 2 else "off", "t": i})))
            r.event({"event": "hush", "state": "on", "seconds": i})
            others += 1
            r.poll()  # the loop turn that emitted them writes them to the outbox
            clock.advance(1000)
    assert r.outbox.lost_safety > 0  # this boot lost some too
    lost = r.outbox.unacked_lost
    assert lost > 40  # far more than this boot's since-boot counter says
    # the device comes back online (a reboot first, as after the outage)
    net = FakeNet()
    b = AutoBroker(net)
    r = boot(net)
    for _ in range(3000):
        r.poll()
        b.service()
        clock.advance(10)
    got = {(m["boot"], m["seq"]) for m in b.messages("event") if m["event"] == "alarm"}
    assert got <= set(emitted)
    assert len(got) + lost == len(emitted)  # every safety event delivered or counted
    assert emitted[0] in got and emitted[-1] in got  # the first detection and the newest
    st = b.messages("state")[-1]
    assert st["losses"]["lost_safety"] == lost
    assert st["losses"]["dropped_events"] == others - len(
        [m for m in b.messages("event") if m["event"] == "hush"])
    # acknowledged: gone from the state, and stays gone after a reboot
    ack = sign(KEY, DEV, "ack-1", 1, 0, "ack_losses", st["losses"])
    topic = ("gasguard/%s/command" % DEV).encode()
    net.last.feed(packet(0x32, struct.pack("!H", len(topic)) + topic + b"\x00\x09"
                         + json.dumps(ack).encode()))
    for _ in range(100):
        r.poll()
        b.service()
        clock.advance(10)
    assert "losses" not in b.messages("state")[-1]
    r = boot(FakeNet("unreachable"))
    assert (r.outbox.unacked_lost, r.outbox.unacked_dropped) == (0, 0)

