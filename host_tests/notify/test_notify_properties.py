"""Property tests of the notify invariants: nothing twice, nothing lost, the first alarm
notification never rate limited, escalation reaching every tier exactly once first-hand."""

import heapq
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasguard_tools.notify import config as cfgmod
from gasguard_tools.notify import escalation, incidents
from gasguard_tools.notify.ingest import Ingestor
from gasguard_tools.notify.ratelimit import hold_until
from gasguard_tools.notify.store import open_store
from fixtures.notify import DEV, VALVE, alarm, state, topic, valve

CFG = {"escalate_after_s": 10, "repeat_s": 20,
       "recipients": {n: {"endpoints": [{"channel": "console"}]} for n in "abcd"},
       "sites": [{"name": "s", "devices": ["*"], "tiers": ["a", ["b", "c"], "d"]}]}

# one device's messages, in the order it sends them (seq grows)
MSG = st.sampled_from(["on1", "on2", "off2", "off1", "closed", "open", "offline", "online"])


def make(dev, i, what):
    seq = i + 1
    if what in ("on1", "on2"):
        return alarm(dev, 1, seq, "on", level=int(what[2]))
    if what in ("off1", "off2"):
        return alarm(dev, 1, seq, "off", level=int(what[3]))
    if what in ("closed", "open"):
        return valve(dev, 1, seq, what)
    return state(dev, 1, seq, online=what == "online",
                 reason=None if what == "online" else "connection_lost")


def deliveries(store):
    with store.tx() as t:
        return sorted(t.all("SELECT origin, recipient, kind, first FROM deliveries"))


def ingest_all(path, arrivals, restarts=()):
    store = open_store(path)
    cfgmod.import_config(store, cfgmod.check(CFG))
    ing = Ingestor(store, lambda: cfgmod.Directory.load(store))
    for i, m in enumerate(arrivals):
        if i in restarts:  # the service restarts: new connections, new ingestor, same file
            store.close()
            store = open_store(path)
            ing = Ingestor(store, lambda: cfgmod.Directory.load(store))
        ing.handle(topic(m), json.dumps(m).encode(), now=1000.0 + i)
    return store


@st.composite
def arrivals(draw):
    """Unique messages of two devices (each in its own order), then QoS 1 style re-arrivals:
    any message may arrive again any number of times after its first arrival."""
    unique = []
    for dev in (DEV, VALVE):
        unique.append([make(dev, i, w) for i, w in enumerate(draw(st.lists(MSG, max_size=8)))])
    order = draw(st.permutations([0] * len(unique[0]) + [1] * len(unique[1])))
    idx = [0, 0]
    first = []
    for d in order:
        first.append(unique[d][idx[d]])
        idx[d] += 1
    seq = list(first)
    for _ in range(draw(st.integers(0, 12))):
        if not first:
            break
        k = draw(st.integers(0, len(first) - 1))
        pos = draw(st.integers(seq.index(first[k]) + 1, len(seq)))
        seq.insert(pos, first[k])
    restarts = draw(st.sets(st.integers(1, max(1, len(seq) - 1)), max_size=3))
    return first, seq, restarts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals())
def test_redeliveries_and_restarts_queue_exactly_what_one_clean_pass_queues(tmp_path_factory, a):
    first, seq, restarts = a
    d = tmp_path_factory.mktemp("p")
    clean = deliveries(ingest_all(str(d / "clean.db"), first))
    messy = deliveries(ingest_all(str(d / "messy.db"), seq, restarts))
    assert messy == clean                                   # nothing twice, nothing lost
    assert len(set((o, r) for o, r, _k, _f in messy)) == len(messy)
    # nothing lost: every alarm-on that opened an incident told tier 0 first-hand
    opened = [m for m in first if m.get("event") == "alarm"]
    if opened and opened[0]["data"]["state"] == "on":
        origin = "ev:%s:1:%d" % (opened[0]["dev"], opened[0]["seq"])
        assert (origin, "a", "alarm_on", 1) in messy


TIERS = st.lists(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=3), min_size=1,
                 max_size=4)


@given(TIERS, st.integers(0, 3))
def test_escalation_tells_everyone_first_hand_exactly_once_then_repeats_to_all(tiers, extra):
    n = len(tiers)
    everyone = {r for t in tiers for r in t}
    firsts = []
    told = set()
    for step in range(n + extra):
        got = escalation.recipients_at(tiers, step)
        names = [r for r, _f in got]
        assert len(names) == len(set(names))                # nobody twice in one step
        firsts += [r for r, f in got if f]
        told |= set(names)
        if step < n:
            assert set(names) == set(tiers[step])
        else:
            assert set(names) == everyone and not any(f for _r, f in got)
    assert sorted(firsts) == sorted(everyone)              # each exactly once first-hand
    assert told == everyone


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0, 50), min_size=1, max_size=8), st.integers(1, 3))
def test_escalation_steps_run_once_however_many_instances_tick(tmp_path_factory, ticks, instances):
    store = open_store(str(tmp_path_factory.mktemp("e") / "e.db"))
    cfgmod.import_config(store, cfgmod.check(CFG))
    directory = cfgmod.Directory.load(store)
    ing = Ingestor(store, lambda: directory)
    m = alarm(DEV, 1, 1)
    ing.handle(topic(m), json.dumps(m).encode(), now=1000.0)
    for dt in sorted(ticks):
        for _ in range(instances):                          # several instances, same moment
            incidents.escalate_due(store, directory, 1000.0 + dt)
    with store.tx() as t:
        step = t.one("SELECT step FROM incidents")[0]
        rows = t.all("SELECT origin, recipient FROM deliveries")
    # reference: a step is due at next_at; a tick at T takes it and schedules the next from T
    tiers = CFG["sites"][0]["tiers"]
    expected, next_at = 0, 1000.0 + 10
    for dt in sorted(ticks):
        for _ in range(instances):
            if 1000.0 + dt >= next_at:
                expected += 1
                next_at = 1000.0 + dt + escalation.delay_after(
                    [x if isinstance(x, list) else [x] for x in tiers], expected, 10, 20)
    assert step == expected
    assert len(rows) == len(set(rows))
    origins = {o for o, _r in rows}
    assert origins == {"ev:%s:1:1" % DEV} | {"inc:%s:%d" % (t_id, s) for t_id in
                                               _incident_ids(store) for s in range(1, step + 1)}


def _incident_ids(store):
    with store.tx() as t:
        return [r[0] for r in t.all("SELECT id FROM incidents")]


@given(st.lists(st.tuples(st.floats(0, 30), st.booleans()), min_size=1, max_size=40),
       st.integers(1, 5), st.floats(1, 20))
def test_rate_limit_never_holds_a_first_notice_and_loses_nothing(reqs, max_n, per_s):
    """Simulate one endpoint: notifications arrive at t (first or not); a held one is tried
    again at the time hold_until names, as the worker does."""
    heap = []
    t = 0.0
    for i, (dt, first) in enumerate(reqs):
        t += dt
        heapq.heappush(heap, (t, i, first, t))
    sent = []  # (time, first, arrival)
    tries = 0
    while heap:
        now, i, first, arrived = heapq.heappop(heap)
        tries += 1
        assert tries < 10000
        hold = hold_until(first, [s for s, _f, _a in sent], now, max_n, per_s)
        if hold is None:
            sent.append((now, first, arrived))
        else:
            assert hold > now
            heapq.heappush(heap, (hold, i, first, arrived))
    assert len(sent) == len(reqs)                            # nothing lost
    for k, (at, first, arrived) in enumerate(sent):
        if first:
            assert at == arrived                             # the first is never held
        else:                                                # the window had room for it
            assert sum(1 for s, _f, _a in sent[:k] if at - per_s < s <= at) < max_n
