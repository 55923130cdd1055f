"""The Reporter: identity passthrough, rejected commands stay off the flash."""

from reporting_fakes import AutoBroker  # first: compiling it needs the most heap
from gasguard.mqtt import packet
from reporter_rig import DEV, reporter, run as _run

KEY = b"\x01" * 32
CFG = {"base": "gg", "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 100, "backoff_max_ms": 1000}}


def _rep(tag, cfg=CFG, **kw):
    return reporter(tag, cfg, **kw)[:3]


def test_identity_messages_pass_verbatim_both_ways():
    r, clock, net = _rep("rp12", cfg=dict(CFG, commands=False))
    b = AutoBroker(net)
    got = []
    r.attach_identity(got.append)
    hb = b'{"t":"hb","v":1}'
    assert r.identity_send("hb", hb)
    for i in range(3):
        assert r.identity_send("hb", hb)
    assert not r.identity_send("hb", hb)  # queue of 4 full: ActiveId retries later
    _run(r, clock, b, 300)
    ids = [(p, q) for t, p, q, rt, dup in b.published if t == "gg/" + DEV + "/identity"]
    assert ids == [(hb, 1)] * 4
    down = ("gg/" + DEV + "/identity_down").encode()
    net.last.feed(packet(0x32, bytes([0, len(down)]) + down + b"\x00\x05" + b'{"t":"reg_ack"}'))
    _run(r, clock, b, 50)
    assert got == [b'{"t":"reg_ack"}']


def test_rejected_commands_never_touch_the_flash_outbox():
    r, clock, net = _rep("rp14", key=KEY)
    b = AutoBroker(net)
    _run(r, clock, b, 200)
    b.ack = False
    topic = ("gg/" + DEV + "/command").encode()
    before = r.store.size("outbox")
    for i in range(10):
        net.last.feed(packet(0x32, bytes([0, len(topic)]) + topic + bytes([0, i + 1]) + b"junk"))
    _run(r, clock, b, 100)
    assert len(r.outbox) == 0 and r.store.size("outbox") == before
    assert r.commands.rejected == 10
    res = b.messages("command_result")
    assert 4 <= len(res) < 10 and r.rq_dropped == 10 - len(res)
    assert all(m["reason"] == "malformed" for m in res)
