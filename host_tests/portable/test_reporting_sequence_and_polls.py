"""The Reporter: boot counter and (dev, boot, seq) uniqueness, heap use of an idle poll."""

from gasguard.reporter import Reporter
from gasguard.store import FileStore
from ptest import full_heap_lockable, raised_under_full_heap, tmpdir
from reporting_fakes import AutoBroker
from simboard import SimClock
from reporter_rig import ALARMS, IDENT, reporter, run as _run

CFG = {"base": "gg", "commands": False, "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100,
                                                   "backoff_max_ms": 1000}}


def _rep(tag, net=None, clock=None, d=None, **kw):
    return reporter(tag, kw.pop("cfg", CFG), net, clock, d, **kw)


def test_boot_counter_and_sequence_make_a_unique_key():
    d = tmpdir("rp7")
    keys = set()
    for boot in range(1, 4):
        r, clock, net, d = _rep("rp7", d=d, cfg=CFG)
        assert r.boot == boot
        for ev in ALARMS:
            seq = r.event(ev)
            keys.add((r.boot, seq))
    assert len(keys) == 12


def test_app_boot_counter_is_used_but_never_repeated():
    d = tmpdir("rp13")
    r, clock, net, d = _rep("rp13", d=d, boot=7)
    assert r.boot == 7
    r, clock, net, d = _rep("rp13", d=d, boot=8)
    assert r.boot == 8
    r, clock, net, d = _rep("rp13", d=d, boot=8)  # the app's counter did not move
    assert r.boot == 9
    r, clock, net, d = _rep("rp13", d=d)
    assert r.boot == 10


def test_idle_connected_poll_allocates_nothing_on_micropython():
    import gc

    if not hasattr(gc, "mem_alloc"):
        return  # CPython: no heap counter; the property is about MicroPython's GC heap
    r, clock, net, d = _rep("rp15")
    b = AutoBroker(net)
    _run(r, clock, b, 300)
    assert r.online and len(r.outbox) == 0
    net.last.take()
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        for _ in range(200):
            r.poll()
            clock.advance(10)
        used = gc.mem_alloc() - a
    finally:
        gc.enable()
    assert used == 0, used


def test_connected_poll_with_incoming_traffic_allocates_nothing_on_micropython():
    """A loop turn that reads and handles packets (PINGRESP, SUBACK, a PUBACK, whole or
    cut by the read) allocates nothing: the client reads into its buffer preallocated at
    construction and parses in place (issue 10: at 112 KB, a fresh bytes per read once left
    the heap without a hole for it)."""
    import gc

    if not hasattr(gc, "mem_alloc"):
        return
    r, clock, net, d = _rep("rp15t")
    b = AutoBroker(net)
    _run(r, clock, b, 300)
    assert r.online and len(r.outbox) == 0
    s = net.last
    s.take()
    mq = r.mqtt
    pings = 0
    turns = -5  # one round first: the buffer for a cut packet reaches its size
    used = []
    # PINGRESP, SUBACK, PUBACK (unknown id: ignored), then a PUBACK cut by the read
    traffic = (b"\xd0\x00", b"\x90\x03\x00\x09\x01", b"\x40\x02\x7f\x7f",
               b"\xd0\x00\x40\x02\x7f", b"\x7e\xd0\x00")
    while turns < 200:
        s.rx.extend(traffic[turns % 5])  # (the harness allocates, outside the measure)
        mq._ping_sent = clock.ticks_ms()
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        r.poll()
        u = gc.mem_alloc() - a
        gc.enable()
        if u and turns >= 0:
            used.append((turns, u))
        pings += mq._ping_sent is None
        clock.advance(10)
        s.take()
        turns += 1
    assert r.online and not s.rx, s.rx
    assert pings >= 110, pings  # the PINGRESPs were read and handled
    assert used == [], used


class CountingStore(FileStore):
    def __init__(self, root):
        FileStore.__init__(self, root)
        self.writes = 0

    def write(self, name, data):
        self.writes += 1
        FileStore.write(self, name, data)

    def append(self, name, data):
        self.writes += 1
        FileStore.append(self, name, data)


def test_event_does_no_flash_io_and_the_next_poll_persists_it():
    st = CountingStore(tmpdir("rp16"))
    r = Reporter(SimClock(), st, IDENT, CFG, None)
    w0 = st.writes
    seqs = [r.event(ev) for ev in ALARMS]
    assert st.writes == w0  # the alarm path (detector -> emit -> event) never waits on flash
    assert r.status()["outbox"] == 4  # counted while pending
    r.poll()
    assert st.writes == w0 + 4
    again = Reporter(SimClock(), FileStore(st.root), IDENT, CFG, None)
    assert again.outbox.keys() == [(r.boot, s) for s in seqs]


def test_status_fn_fills_the_state_message_when_it_is_sent():
    calls = []

    def status():
        calls.append(1)
        return {"alarm": len(calls)}

    r, clock, net, d = _rep("rp17", status_fn=status)
    b = AutoBroker(net)
    _run(r, clock, b, 200)
    r.event(ALARMS[0])  # a safety event re-sends the state
    _run(r, clock, b, 200)
    import json

    st = [json.loads(p) for t, p, q, rt, dup in b.published if t.endswith("/state")]
    assert [m["status"] for m in st] == [{"alarm": 1}, {"alarm": 2}]
    assert json.loads(r.mqtt.will()[1])["status"] == {}  # the will is not the app's live state


def test_unencodable_or_huge_events_are_counted_not_raised_into_the_loop():
    r, clock, net, d = _rep("rp18", cfg=dict(CFG, outbox_bytes=1024, outbox_reserve=0))
    r.event({"event": "weird", "blob": {1, 2}})  # a set is not JSON (MicroPython's json
    # would write its repr instead of refusing it)
    r.event({"event": "huge", "x": "y" * 1500})  # larger than the whole outbox
    r.event(ALARMS[0])
    r.poll()  # must not raise
    assert r.bad_events == 2 and r.status()["bad_events"] == 2
    assert len(r.outbox) == 1


def test_non_json_telemetry_and_status_are_refused_not_sent_broken():
    r, clock, net, d = _rep("rp19", status_fn=lambda: {"x": {1}})
    b = AutoBroker(net)
    assert r.telemetry({"ch4_ppm_x10": {1, 2}}) is None and r.bad_events == 1
    assert r.telemetry({"ch4_ppm_x10": 5}) is not None
    _run(r, clock, b, 200)
    import json

    st = [json.loads(p) for t, p, q, rt, dup in b.published if t.endswith("/state")]
    assert st[0]["status"] == {"status_error": "not_json"}
    assert [m["data"] for m in b.messages("telemetry")] == [{"ch4_ppm_x10": 5}]


def test_telemetry_ring_drops_oldest_counts_and_yields_to_events():
    r, clock, net, d = _rep("rp5", cfg=dict(CFG, telemetry_slots=3, window=1))
    assert r.commands is None
    b = AutoBroker(net)
    for i in range(5):
        r.telemetry({"ch4_ppm_x10": i})
    assert r.ring_dropped == 2
    for ev in ALARMS:
        r.event(ev)
    _run(r, clock, b, 500)
    assert r.mqtt.failures == 0, r.mqtt.last_error
    kinds = [m["kind"] for m in b.messages() if m["kind"] != "state"]
    assert kinds[:4] in (["event", "event", "valve", "event"],)
    tel = b.messages("telemetry")
    assert [m["data"]["ch4_ppm_x10"] for m in tel] == [2, 3, 4]
    assert [m["dropped"] for m in tel] == [2, 2, 2]
    qos = set(q for t, p, q, rt, dup in b.published if t.endswith("/telemetry"))
    assert qos == {0}


def test_events_queued_under_a_full_heap_stay_queued_and_are_delivered_after():
    """With no heap left at all (heap locked), flushing the queued alarm events raises
    nothing and loses nothing: they stay in RAM, in order, each still named, and go to the
    outbox once there is heap again. (Before: `except (TypeError, ValueError)` could not
    even build its tuple, the MemoryError left the loop turn with the event's name popped,
    and every later flush failed on it: no event reached the platform again.) MicroPython
    only: CPython has no heap to lock."""
    if not full_heap_lockable():
        return
    r, clock, net, d = _rep("rp-full")
    for ev in ALARMS[:2]:
        r.event(ev)
    err = raised_under_full_heap(r.flush)
    assert err is None, repr(err)
    assert len(r.outbox) == 0 and r.bad_events == 0
    r.flush()
    assert len(r.outbox) == 2 and r.bad_events == 0
    assert [m["data"]["level"] for m in _outbox_messages(r)] == [1, 2]


def _outbox_messages(r):
    import json

    return [json.loads(bytes(r.outbox.message(e))) for e in r.outbox.entries]
