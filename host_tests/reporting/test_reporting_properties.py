"""Property tests for the reporting rules that have invariants.

- Outbox (RuleBasedStateMachine): against a model, through appends, acks, reboots and
  power cuts at random byte offsets: nothing durable is lost, nothing acked comes back
  unless its tombstone was cut, order is kept, capacity holds, safety messages are only
  dropped when the outbox is full of them (and then counted).
- Telemetry ring: keeps the newest `slots` messages in order and counts every drop.
- MQTT wire: any PUBLISH the client builds parses back to the same topic, payload, QoS,
  packet id and flags; the remaining-length parser never over-reads on truncated input.
- Commands: any change to a signed command's fields breaks the MAC.
"""

import shutil
import tempfile

from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gasguard.mqtt import MQTTClient, packet, parse_remaining
from gasguard.commands import Commands, canonical, sign
from gasguard.outbox import Outbox
from gasguard.store import FileStore
from reporting_fakes import FakeNet, publish_fields, run_until_up
from simboard import PowerCutStore, SimClock

LIMIT = 600
RESERVE = 200


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="gg-obsm-")
        self.ob = Outbox(FileStore(self.root), max_bytes=LIMIT, reserve_bytes=RESERVE)
        self.boot = 1
        self.seq = 0
        self.all = {}  # key -> (prio, msg) of everything ever appended
        self.acked = set()
        self.maybe = set()  # keys whose state on flash is uncertain after a cut

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(prio=st.sampled_from([0, 1]), n=st.integers(0, 120))
    def append(self, prio, n):
        self.seq += 1
        key = (self.boot, self.seq)
        msg = b"%d-%d:" % key + b"x" * n
        lost_before = self.ob.lost_safety
        before = self.ob.keys()
        safety = sum(e[5] for e in self.ob.entries if e[3] == 0)
        kept = self.ob.append(key[0], key[1], 1, prio, msg)
        self.all[key] = (prio, msg)
        if not kept:
            # only non-safety is ever refused, only when safety messages fill the space,
            # and a refusal drops nothing else
            assert prio == 1 and safety + len(msg) + 19 > LIMIT
            assert self.ob.keys() == before
        else:
            assert self.ob.keys()[-1] == key
        if self.ob.lost_safety > lost_before:
            assert prio == 0 and all(e[3] == 0 for e in self.ob.entries)

    @precondition(lambda self: len(self.ob.entries) > 0)
    @rule(data=st.data())
    def ack(self, data):
        key = data.draw(st.sampled_from(self.ob.keys()))
        assert self.ob.ack(*key)
        self.acked.add(key)

    @rule()
    def reboot(self):
        before = self.ob.keys()
        self.ob = Outbox(FileStore(self.root), max_bytes=LIMIT, reserve_bytes=RESERVE)
        after = self.ob.keys()
        # exactly what RAM held is what flash holds (no cut happened)
        assert after == before
        self.boot += 1
        self.seq = 0

    @rule(prio=st.sampled_from([0, 1]), cut=st.integers(0, 400), ack_first=st.booleans())
    def power_cut(self, prio, cut, ack_first):
        """The power goes while an append (or an ack) is being written."""
        store = PowerCutStore(self.root, budget=cut)
        ob = Outbox(store, max_bytes=LIMIT, reserve_bytes=RESERVE)
        before = ob.keys()
        if ack_first and before:
            victim = before[0]
            ob.ack(*victim)
            self.maybe.add(victim)
        self.seq += 1
        key = (self.boot, self.seq)
        msg = b"%d-%d:" % key + b"y" * 30
        ob.append(key[0], key[1], 1, prio, msg)
        self.all[key] = (prio, msg)
        self.maybe.add(key)
        self.ob = Outbox(FileStore(self.root), max_bytes=LIMIT, reserve_bytes=RESERVE)
        after = self.ob.keys()
        # every message that was durable before the cut and not being acked is still there,
        # unless the append legitimately dropped it for space and the rewrite completed
        for k in before:
            if k not in self.maybe and k in ob.keys():
                assert k in after, (k, before, after)
        self.boot += 1
        self.seq = 0

    @invariant()
    def consistent(self):
        keys = self.ob.keys()
        assert keys == sorted(keys)  # in order
        assert len(set(keys)) == len(keys)
        for e in self.ob.entries:
            k = (e[0], e[1])
            assert self.all[k][1] == bytes(self.ob.message(e))  # never corrupted (read back)
            if k in self.acked and k not in self.maybe:
                raise AssertionError("acked message %r came back" % (k,))
        assert self.ob.live_bytes == sum(e[5] for e in self.ob.entries)
        assert self.ob.live_bytes <= LIMIT + RESERVE
        if any(e[3] == 1 for e in self.ob.entries):
            assert sum(e[5] for e in self.ob.entries) <= LIMIT + RESERVE


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


class _RAM:
    """A store in RAM (read/write/append)."""

    def __init__(self):
        self.d = {}

    def read(self, n):
        return self.d.get(n)

    def write(self, n, b):
        self.d[n] = bytes(b)

    def append(self, n, b):
        self.d[n] = self.d.get(n, b"") + bytes(b)


@given(slots=st.integers(1, 10), items=st.lists(st.integers(0, 10 ** 6), max_size=40))
def test_ring_keeps_newest_in_order_and_counts_drops(slots, items):
    import json

    from gasguard.reporter import Reporter

    r = Reporter(SimClock(), _RAM(), {"device_id": "a/b", "fw": "1"},
                 {"commands": False, "telemetry_slots": slots}, None)
    for x in items:
        r.telemetry({"x": x})
    assert r.ring_dropped == max(0, len(items) - slots)
    assert [json.loads(m)["data"]["x"] for m in r.ring] == (items[-slots:] if items else [])


@given(topic=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="+#"),
                     min_size=1, max_size=60),
       payload=st.binary(max_size=3000), qos=st.sampled_from([0, 1]), retain=st.booleans(),
       dup=st.booleans())
@settings(max_examples=60, deadline=None)
def test_publish_packets_parse_back(topic, payload, qos, retain, dup):
    clock = SimClock()
    cl = MQTTClient(clock, FakeNet(), {"host": "10.0.0.5", "tx_buffer": 8192})
    run_until_up(cl, clock)
    pid = cl.publish(topic, payload, qos, retain, dup)
    assert pid == 0 if not qos else 1 <= pid <= 65535
    for _ in range(5):  # at most 1460 bytes go out per poll
        cl.poll()
    (first, body), = cl._sock.take()
    assert publish_fields(first, body) == (topic, payload, qos, retain, dup, pid)
    pk = packet(first, body)
    n, h = parse_remaining(pk, 0)
    assert h + n == len(pk)
    for cut in range(1, h):  # header itself cut short
        assert parse_remaining(pk[:cut], 0) is None


class _Mem:
    def __init__(self):
        self.d = {}

    def read(self, n):
        return self.d.get(n)

    def write(self, n, b):
        self.d[n] = bytes(b)


class _H:
    def __init__(self):
        self.calls = 0

    def hush(self):
        self.calls += 1


KEY = bytes(range(32))
DEV = "88.118.8/GDH.240915.00123F"


@settings(max_examples=200)
@given(field=st.sampled_from(["id", "ctr", "ts", "cmd"]), ctr=st.integers(1, 10 ** 9),
       ts=st.integers(0, 2 ** 40), delta=st.integers(1, 1000))
def test_any_field_change_breaks_the_mac(field, ctr, ts, delta):
    import json

    m = sign(KEY, DEV, "abc", ctr, ts, "hush")
    m2 = dict(m)
    if field == "id":
        m2["id"] = "abd"
    elif field == "ctr":
        m2["ctr"] = ctr + delta
    elif field == "ts":
        m2["ts"] = ts + delta
    else:
        m2["cmd"] = "self_test"
    h = _H()
    c = Commands(DEV, KEY, _Mem(), h, None, 300)
    r = c.handle(json.dumps(m2).encode())
    assert r["ok"] is False and r["reason"] == "bad_mac" and h.calls == 0
    assert c.handle(json.dumps(m).encode())["ok"] is True and h.calls == 1


@given(a=st.integers(10, 86400), b=st.integers(10, 86400))
def test_canonical_encoding_is_injective_on_the_interval(a, b):
    ca = canonical(DEV, "x", 1, 2, "set_interval", {"seconds": a})
    cb = canonical(DEV, "x", 1, 2, "set_interval", {"seconds": b})
    assert (ca == cb) == (a == b)


# ---- delivery under random faults ------------------------------------------------------

from reporting_fakes import AutoBroker, FakeNet  # noqa: E402
from gasguard.reporter import Reporter  # noqa: E402
from simboard import SimClock  # noqa: E402

FAULTS = st.lists(st.tuples(
    st.sampled_from(["event", "event", "event", "drop", "drop", "refuse", "heal", "noack",
                     "noack", "ack", "trickle", "reboot", "wait"]),
    st.integers(1, 400)), min_size=3, max_size=40)


@settings(max_examples=150, deadline=None)
@given(steps=FAULTS)
def test_every_event_is_delivered_in_order_whatever_the_network_does(steps):
    root = tempfile.mkdtemp(prefix="gg-dlv-")
    try:
        clock = SimClock()
        cfg = {"commands": False, "window": 3,
               "mqtt": {"host": "10.0.0.1", "backoff_min_ms": 50, "backoff_max_ms": 400,
                        "retry_ms": 300, "connect_timeout_ms": 500, "keepalive_s": 2,
                        "ping_timeout_ms": 500}}
        ident = {"device_id": "sim/prop", "fw": "1"}

        def boot():
            net = FakeNet()
            return Reporter(clock, FileStore(root), ident, cfg, net, rand=lambda n: n // 2), \
                net, AutoBroker(net)

        r, net, b = boot()
        brokers = [b]
        queued = []
        for op, n in steps:
            if op == "event":
                queued.append((r.boot, r.event({"event": "alarm", "gas": "co", "level": 1,
                                                "state": "on", "t": n})))
            elif op == "drop" and net.last is not None:
                net.last.peer_closed = True
            elif op == "refuse":
                net.mode = "refused"
            elif op == "heal":
                net.mode = "ok"
                net.trickle = 0
            elif op == "noack":
                b.ack = False
            elif op == "ack":
                b.ack = True
            elif op == "trickle":
                net.trickle = 1 + n % 7
            elif op == "reboot":
                r.flush()  # what the loop turn that emitted them did
                r, net, b = boot()
                brokers.append(b)
            for _ in range(n // 10 + 1):
                r.poll()
                b.service()
                clock.advance(10)
        # the network heals for good
        net.mode = "ok"
        net.trickle = 0
        b.ack = True
        for _ in range(3000):
            r.poll()
            b.service()
            clock.advance(10)
            if not r.outbox.entries and not r._pending:
                break
        assert len(r.outbox) == 0
        seen = []
        for br in brokers:
            for t, p, q, rt, dup in br.published:
                if t.endswith("/event"):
                    m = __import__("json").loads(p)
                    k = (m["boot"], m["seq"])
                    if k not in seen:
                        seen.append(k)
        assert seen == queued  # all of them, first arrivals in order
    finally:
        shutil.rmtree(root, ignore_errors=True)
