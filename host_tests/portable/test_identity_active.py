"""Active identifier: registration, forged/replayed acks, heartbeat, remote read/update."""

import json

from ptest import raises, tmpdir

from gasguard.active_id import MAX_PENDING, ActiveId, MessageError, direction_keys, open_msg, seal
from gasguard.id_platform import platform_ack, platform_cmd, platform_open
from gasguard.identity import IdentityError, IdentityStore
from gasguard.store import FileStore
from gasguard.validate import ConfigError
from simboard import SimClock

ID_H = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(1, 33))
OTHER = bytes(range(2, 34))


def setup(tag, cfg=None, tier="H"):
    st = FileStore(tmpdir("act-" + tag))
    ids = IdentityStore(st)
    ident = ID_H if tier == "H" else "88.118.8/GDL.240915.00123N"
    ids.provision({"id": ident, "serial": "GDH24091500123", "model": "GG-200", "tier": tier,
                   "kind": "detector", "hw_rev": "1.2", "mfg_date": "2024-09-15",
                   "qr_template": "{id}"}, KEY if tier != "L" else None)
    ids.lock()
    clock = SimClock()
    sent = []

    def send(kind, payload):
        sent.append((kind, payload))
        return True

    n = [0]

    def rng(k):
        n[0] += 1
        return bytes([n[0]] * k)

    a = ActiveId(clock, ids, cfg or {}, send, "0.1.0", rng=rng, status_fn=lambda: {"alarm": 0})
    return st, ids, clock, sent, a


def test_registration_round_trip_and_forged_acks():
    st, ids, clock, sent, a = setup("a")
    assert a.poll() == "reg"
    kind, reg = sent[-1]
    body = platform_open(KEY, reg)
    assert body["t"] == "reg" and body["id"] == ID_H and body["fw"] == "0.1.0"
    assert body["tier"] == "H" and body["kid"] == ids.key_id() and body["seq"] == 1
    assert KEY.hex() not in reg.decode()
    # forged: signed with another key
    # (the attacker re-seals the registration under its own key and acks it)
    forged_reg = seal(direction_keys(OTHER)[0], body)
    ok, why = a.on_message(platform_ack(OTHER, forged_reg, 1700000000))
    assert not ok and why == "bad mac"
    # forged: the device's own uplink reflected back
    assert a.on_message(reg) == (False, "bad mac")
    # tampered: valid ack with a changed field
    good = platform_ack(KEY, reg, 1700000000)
    m = json.loads(good)
    m["ts"] = 1700000001
    assert a.on_message(json.dumps(m).encode()) == (False, "bad mac")
    assert not a.registered
    # genuine
    assert a.on_message(good) == (True, "registered")
    assert a.registered and ids.platform()["reg_ts"] == 1700000000
    # replayed ack: refused
    assert a.on_message(good)[0] is False
    assert a.counters["rejected"] == 4


def test_acks_for_recent_attempts_are_fresh_older_ones_stale():
    # the reporter may deliver several queued attempts after an outage: an ack for any of
    # the last MAX_PENDING attempts of this boot registers; older ones and replays do not
    st, ids, clock, sent, a = setup("b")
    regs = []
    for _ in range(MAX_PENDING + 1):
        assert a.poll() == "reg"
        regs.append(sent[-1][1])
        clock.advance(3600 * 1000)
    ok, why = a.on_message(platform_ack(KEY, regs[0], 5))
    assert not ok and "stale nonce" in why
    assert a.on_message(platform_ack(KEY, regs[1], 6)) == (True, "registered")
    ok, why = a.on_message(platform_ack(KEY, regs[-1], 7))
    assert not ok and why == "no registration pending"
    assert ids.platform()["reg_ts"] == 6


def test_a_refused_send_does_not_count_as_an_attempt():
    st, ids, clock, sent, a = setup("b2")
    got = []

    def full(kind, payload):  # the reporter's queue is full
        got.append(payload)
        return False

    a.send = full
    a.poll()
    assert a.counters["send_refused"] == 1 and not a.pending
    ok, why = a.on_message(platform_ack(KEY, got[0], 5))
    assert not ok and why == "no registration pending"


def test_registration_retry_backs_off_and_never_blocks():
    st, ids, clock, sent, a = setup("c", {"reg_retry_min_s": 10, "reg_retry_max_s": 60})
    times = []
    for _ in range(400):
        if a.poll() == "reg":
            times.append(clock.elapsed_ms // 1000)
        clock.advance(1000)
    gaps = [b - t for t, b in zip(times, times[1:])]
    assert gaps[:4] == [10, 20, 40, 60] and max(gaps) == 60
    seqs = [platform_open(KEY, p)["seq"] for _k, p in sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_heartbeat_interval_and_survives_reboot():
    st, ids, clock, sent, a = setup("d", {"heartbeat_s": 120})
    a.poll()
    a.on_message(platform_ack(KEY, sent[-1][1], 1))
    del sent[:]
    for _ in range(600):
        a.poll()
        clock.advance(1000)
    hbs = [platform_open(KEY, p) for k, p in sent if k == "hb"]
    assert len(hbs) == 4  # at 120, 240, 360 and 480 s
    assert hbs[0]["st"] == {"alarm": 0} and hbs[0]["up"] == 120 and hbs[1]["up"] == 240
    # reboot: already registered, heartbeat at once, seq keeps increasing
    sent2 = []
    b = ActiveId(clock, IdentityStore(st), {"heartbeat_s": 120}, lambda k, p: sent2.append((k, p)),
                 "0.1.1")
    assert b.poll() == "hb"
    assert platform_open(KEY, sent2[0][1])["seq"] > hbs[-1]["seq"]
    assert platform_open(KEY, sent2[0][1])["fw"] == "0.1.1"


def test_uplink_seq_is_reserved_on_flash_and_never_reused():
    st, ids, clock, sent, a = setup("s", {"heartbeat_s": 60})
    a.poll()
    a.on_message(platform_ack(KEY, sent[-1][1], 1))
    for _ in range(45 * 60):
        a.poll()
        clock.advance(1000)
    seqs = [platform_open(KEY, p)["seq"] for _k, p in sent]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 40
    # a reboot continues above everything used (a block of 16 is reserved before use)
    b = ActiveId(clock, IdentityStore(st), {}, lambda k, p: sent.append((k, p)), "0.1.0")
    assert b.poll() == "hb"
    assert seqs[-1] < platform_open(KEY, sent[-1][1])["seq"] <= seqs[-1] + 16
    # an unreadable reservation jumps far ahead instead of reusing a number
    st.write("id_seq", b"junk")
    c = ActiveId(clock, IdentityStore(st), {}, lambda k, p: sent.append((k, p)), "0.1.0")
    assert c.poll() == "hb" and platform_open(KEY, sent[-1][1])["seq"] == (1 << 28) + 1


def test_remote_read_and_update():
    st, ids, clock, sent, a = setup("e")
    a.poll()
    a.on_message(platform_ack(KEY, sent[-1][1], 1))
    assert a.on_message(platform_cmd(KEY, ID_H, 1, "get_id")) == (True, "get_id")
    rsp = platform_open(KEY, sent[-1][1])
    assert rsp["t"] == "rsp" and rsp["re"] == 1 and rsp["ok"] is True
    assert rsp["data"]["model"] == "GG-200" and rsp["data"]["registered"] is True
    assert "key" not in "".join(rsp["data"].keys()).replace("key_id", "")
    ok, why = a.on_message(platform_cmd(KEY, ID_H, 2, "set_attr", {"site_ref": "ACCT-1"}))
    assert ok and ids.platform_fields()["site_ref"] == "ACCT-1"
    ok, why = a.on_message(platform_cmd(KEY, ID_H, 3, "set_attr", {"model": "EVIL", "site_ref": "x"}))
    assert not ok and "locked" in why
    rsp = platform_open(KEY, sent[-1][1])
    assert rsp["ok"] is False and "locked" in rsp["err"]
    assert ids.load()["model"] == "GG-200" and ids.platform_fields()["site_ref"] == "ACCT-1"
    # replayed command (old seq) and a forged one
    assert a.on_message(platform_cmd(KEY, ID_H, 2, "set_attr", {"site_ref": "B"}))[0] is False
    assert a.on_message(platform_cmd(OTHER, ID_H, 9, "set_attr", {"site_ref": "B"})) == \
        (False, "bad mac")
    assert a.on_message(platform_cmd(KEY, "88.118.8/GVM.240915.00077G", 10, "get_id"))[0] is False
    assert ids.platform_fields()["site_ref"] == "ACCT-1"
    # heartbeat interval within bounds
    assert a.on_message(platform_cmd(KEY, ID_H, 11, "set_hb", {"seconds": 59}))[0] is False
    assert a.on_message(platform_cmd(KEY, ID_H, 12, "set_hb", {"seconds": 600})) == (True, "set_hb")
    assert a.hb_s == 600


def test_garbage_downlinks_never_raise():
    st, ids, clock, sent, a = setup("f")
    for junk in (b"", b"{", b"[]", b"null", b'{"mac":1}', b'{"mac":"' + b"0" * 64 + b'"}',
                 "\u00e9", None, 5, b'{"a":1.5,"mac":"' + b"a" * 64 + b'"}', b"\xff\xfe",
                 b'{"mac":"' + b"z" * 64 + b'"}', b"x" * 5000):
        ok, why = a.on_message(junk)
        assert ok is False and isinstance(why, str)
    raises(MessageError, open_msg, KEY, b"{}")


def test_config_and_tier_rules():
    raises(ConfigError, setup, "g", {"heartbeat_s": 59})
    raises(ConfigError, setup, "g2", {"heartbeat_s": 86401})
    raises(ConfigError, setup, "g3", {"hb": 100})
    raises(ConfigError, setup, "g4", {"reg_retry_min_s": 100, "reg_retry_max_s": 60})
    raises(IdentityError, setup, "g5", None, "L")


def test_the_identity_section_has_one_check_for_cfg_and_the_identifier():
    """report_cfg.identity_config is what ActiveId() runs and what CFG runs: the same
    refusals with the same words (identity.<key>), the defaults filled in, idempotent."""
    from gasguard.report_cfg import identity_config, platform_config

    assert identity_config({}) == {"heartbeat_s": 3600, "reg_retry_min_s": 30,
                                   "reg_retry_max_s": 3600}
    ok = identity_config({"heartbeat_s": 60, "reg_retry_max_s": 60})
    assert ok == {"heartbeat_s": 60, "reg_retry_min_s": 30, "reg_retry_max_s": 60}
    assert identity_config(ok) == ok
    for bad, words in (({"heartbeat_s": 10}, "identity.heartbeat_s: 10 is outside 60..86400"),
                       ({"heartbeat_s": True}, "identity.heartbeat_s: expected an integer"),
                       ({"heartbeat_s": None}, "identity.heartbeat_s: required"),
                       ({"reg_retry_min_s": 4}, "identity.reg_retry_min_s: 4 is outside"),
                       ({"reg_retry_min_s": 100, "reg_retry_max_s": 60},
                        "identity.reg_retry_max_s: 60 is below reg_retry_min_s 100"),
                       ({"hb": 100}, "identity: unknown key"), ("x", "identity: expected a dict")):
        e1 = raises(ConfigError, identity_config, bad)
        e2 = raises(ConfigError, platform_config, {"identity": bad})
        e3 = raises(ConfigError, setup, "g6", bad)
        assert str(e1) == str(e2) == str(e3) and str(e1).startswith(words), (bad, str(e1))


def test_escaped_non_bmp_text_authenticates_on_both_interpreters():
    # MicroPython's json.loads keeps \ud83d\ude00 as two code points, CPython joins them;
    # canon() writes both back as the same escapes, so the MAC still verifies
    st, ids, clock, sent, a = setup("h")
    wire = platform_cmd(KEY, ID_H, 1, "set_attr", {"installer": "x\U0001f600"})
    assert b"\\ud83d\\ude00" in wire
    ok, why = a.on_message(wire)
    assert not ok and "printable ASCII" in why
    assert platform_open(KEY, sent[-1][1])["ok"] is False
