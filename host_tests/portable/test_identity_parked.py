"""What each parked identity call loads (docs/heap-budget.md, identity stack split by use):
a heartbeat only gasguard.active_id + gasguard.canon, a record read only gasguard.identity,
the factory and remote-update side (gasguard.id_admin, gasguard.identifier) only when used;
and nothing of it stays loaded after a call. Both interpreters."""

import sys

from ptest import tmpdir

from gasguard import lazy
from gasguard.id_platform import platform_ack, platform_cmd
from gasguard.identity import IdentityStore
from gasguard.store import FileStore
from simboard import SimClock

ID_H = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(1, 33))
STACK = ("identity", "identifier", "id_admin", "canon", "active_id")


def _loaded():
    return sorted(m for m in STACK if ("gasguard." + m) in sys.modules)


def _device(tag):
    st = FileStore(tmpdir("parked-" + tag))
    ids = IdentityStore(st)
    ids.provision({"id": ID_H, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    ids.lock()
    lazy.release(*STACK)
    assert _loaded() == []
    seen = []

    def send(kind, payload):  # runs inside the parked call: what is loaded right now
        seen.append((kind, payload, _loaded()))
        return True

    clock = SimClock()
    pids = lazy.ParkedIdentity(st)
    act = lazy.parked_active_id((clock, pids, {"heartbeat_s": 60}, send, "0.1.0",
                                 lambda n: bytes(n), None))
    assert _loaded() == []
    return clock, pids, act, seen


def test_a_heartbeat_loads_only_the_active_identifier_and_the_encoding():
    clock, pids, act, seen = _device("hb")
    assert act.poll() == "reg"
    assert seen[-1][0] == "reg" and seen[-1][2] == ["active_id", "canon"]
    assert _loaded() == []
    ok, why = act.on_message(platform_ack(KEY, seen[-1][1], 1))
    assert (ok, why) == (True, "registered") and _loaded() == []
    for _ in range(130):
        act.poll()
        clock.advance(1000)
    hbs = [s for s in seen if s[0] == "hb"]
    assert len(hbs) == 2
    for s in hbs:
        assert s[2] == ["active_id", "canon"], s[2]
    assert _loaded() == []


def test_record_reads_load_only_the_read_side():
    clock, pids, act, seen = _device("rd")
    got = []
    orig = lazy.load

    def spy(name):
        m = orig(name)
        got.append((name, _loaded()))
        return m

    lazy.load = spy
    try:
        assert pids.load()["id"] == ID_H and pids.locked and pids.status() == "locked"
        assert pids.identity_info("0.1.0")["device_id"] == ID_H
        assert pids.device_key() == KEY
    finally:
        lazy.load = orig
    assert got and all(g == ("identity", ["identity"]) for g in got), got
    assert _loaded() == []


def test_the_rare_side_loads_for_its_call_and_is_released():
    clock, pids, act, seen = _device("rare")
    assert pids.info()["key_id"] == pids.key_id()
    assert _loaded() == []
    act.poll()
    act.on_message(platform_ack(KEY, seen[-1][1], 1))
    ok, why = act.on_message(platform_cmd(KEY, ID_H, 1, "set_attr", {"site_ref": "A-1"}))
    assert (ok, why) == (True, "set_attr")
    assert seen[-1][0] == "rsp" and "id_admin" in seen[-1][2] and "identifier" in seen[-1][2]
    assert pids.platform()["site_ref"] == "A-1"
    assert _loaded() == []


def test_a_cached_record_is_answered_without_loading_the_identity_code():
    # the console's HELLO, ID? and STATUS? read the record at every request: once it is
    # cached (read once, at boot), load() and locked answer from it; the code loads only
    # for the first read
    st = FileStore(tmpdir("parked-cache"))
    ids = IdentityStore(st)
    ids.provision({"id": ID_H, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    ids.lock()
    lazy.release(*STACK)
    pids = lazy.ParkedIdentity(st)
    real = lazy.load
    loads = []
    lazy.load = lambda name: loads.append(name) or real(name)
    try:
        first = pids.load()
        assert loads == ["identity"]
        again = pids.load()
        locked = pids.locked
    finally:
        lazy.load = real
    assert first == ids.load() and first["id"] == ID_H and "locked" not in first
    assert again == first and locked is True and loads == ["identity"], loads
    again["id"] = "changed"  # a copy, as IdentityStore.load() returns
    assert pids.load()["id"] == ID_H
    assert _loaded() == []
