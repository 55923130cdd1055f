"""ActiveId wired to the real Reporter over the reporting engineer's strict fake network (CPython only:
the reporter and the identity modules compiled from source do not fit a 112k heap together):
registration, forged and genuine acknowledgements on the downlink topic, heartbeats."""

from ptest import tmpdir

from gasguard.active_id import ActiveId, attach_reporter, direction_keys, seal
from gasguard.id_platform import platform_ack, platform_cmd, platform_open
from gasguard.identity import IdentityStore
from reporting_fakes import publish_packet
from gasguard.reporter import Reporter
from gasguard.store import FileStore
from reporting_fakes import AutoBroker, FakeNet
from simboard import SimClock

ID = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(1, 33))
OTHER = bytes(range(3, 35))
CFG = {"base": "gg", "commands": False,
       "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}
UP = "gg/" + ID + "/identity"
DOWN = "gg/" + ID + "/identity_down"


def test_registration_and_heartbeat_through_the_reporter():
    store = FileStore(tmpdir("idrep"))
    ids = IdentityStore(store)
    ids.provision({"id": ID, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    ids.lock()
    clock = SimClock()
    net = FakeNet()
    rep = Reporter(clock, store, ids.identity_info("0.1.0"), CFG, net, rand=lambda n: 0)
    act = ActiveId(clock, ids, {"heartbeat_s": 60}, None, "0.1.0")
    attach_reporter(act, rep)
    b = AutoBroker(net)

    def run(ms, step=10):
        for _ in range(ms // step):
            act.poll()
            rep.poll()
            b.service()
            clock.advance(step)

    def ups():
        return [platform_open(KEY, p) for t, p, q, r, dup in b.published if t == UP]

    def downlink(payload):
        net.last.feed(publish_packet(DOWN, payload, 0))

    run(500)
    assert ups() and ups()[0]["t"] == "reg" and ups()[0]["id"] == ID
    reg_wire = [p for t, p, q, r, dup in b.published if t == UP][0]
    reg = platform_open(KEY, reg_wire)
    # forged acknowledgement (another key) and the device's own uplink reflected: rejected
    downlink(platform_ack(OTHER, seal(direction_keys(OTHER)[0], reg), 1))
    downlink(reg_wire)
    run(100)
    assert not act.registered and act.counters["rejected"] == 2
    downlink(platform_ack(KEY, reg_wire, 1726400002))
    run(100)
    assert act.registered and ids.platform()["reg_ts"] == 1726400002
    run(61000, 500)
    assert [m["t"] for m in ups()].count("hb") >= 1
    # a remote read travels back the same way
    downlink(platform_cmd(KEY, ID, 1, "get_id"))
    run(200)
    rsp = [m for m in ups() if m["t"] == "rsp"]
    assert rsp and rsp[0]["ok"] is True and rsp[0]["data"]["registered"] is True
