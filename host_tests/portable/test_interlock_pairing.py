"""Pairing needs a person at both ends; an attacker radio in range cannot pair silently
(issue 15 finding 8, docs/security.md). The attacker runs our own firmware on its radio:
a ValveLink that claims "closed" to every close, or a DetectorLink that keeps a valve's
link up. On both interpreters."""

from ptest import tmpdir

from gasguard import hmac256, x25519
from gasguard import interlock_frame as F
from gasguard.espnow_link import DetectorLink, ValveLink, load_pairing
from gasguard.store import FileStore
from interlock_rig import DET_MAC, KEY, VALVE_MAC, InterlockRig

ATT_MAC = b"\x02\x00\x00\x00\x00\x66"
WINDOW = 5000
LINK = {"pair_window_ms": WINDOW, "heartbeat_ms": 500, "link_timeout_ms": 3000}


def _rig(tag, **kw):
    return InterlockRig(tmpdir("pair-" + tag), stub_valve=True, link=LINK, keep_log=False, **kw)


def _attacker_valve(rig, tag):
    # Answers every close with "closed" while the real valve stays open.
    return ValveLink(rig.air.radio(ATT_MAC), rig.clock, FileStore(tmpdir("att-" + tag)), LINK,
                     rand=rig._rand, on_close=lambda req: None, get_state=lambda: ("closed", "interlock"))


def _attacker_detector(rig, tag):
    return DetectorLink(rig.air.radio(ATT_MAC), rig.clock, FileStore(tmpdir("att-" + tag)), LINK,
                        rand=rig._rand)


def _run(rig, att, ms):
    for _ in range(ms // rig.step_ms):
        rig.step()
        att.poll()


def _failed(rig, who, reason):
    return [e for (_t, w, e) in rig.events
            if w == who and e.get("state") == "pair_failed" and e.get("reason") == reason]


def test_both_buttons_pair_at_the_end_of_the_window():
    rig = _rig("both", paired=False)
    rig.det.pair_button()
    rig.run(1000)
    rig.valve.pair_button()  # a second person, a second later
    rig.run(WINDOW - 1500)
    assert rig.det.key is None and rig.valve.link.key is None  # still listening for a second offer
    rig.run(WINDOW + 1000)
    assert rig.det.key is not None and rig.det.key == rig.valve.link.key
    assert load_pairing(rig.det_store)[1] == VALVE_MAC and load_pairing(rig.valve_store)[1] == DET_MAC
    assert rig.det.link == "up" and rig.valve.link.link == "up"
    rig.det.close("co")
    assert rig.run_until(lambda: rig.det.state == "confirmed", 3000) is not None
    assert not rig.board.is_open


def test_attacker_valve_answering_first_does_not_get_the_detector():
    rig = _rig("attv", paired=False)
    att = _attacker_valve(rig, "v")
    att.pair_button()  # in range and ready before the resident presses anything
    rig.det.pair_button()
    _run(rig, att, 2000)  # the attacker has answered long before the valve's button
    rig.valve.pair_button()
    _run(rig, att, 3 * WINDOW)
    rig.det.close("ch4_high")
    _run(rig, att, 3000)
    assert rig.board.is_open and rig.det.state != "confirmed"  # never "confirmed" while open
    assert load_pairing(rig.det_store) is None and rig.det.key is None
    assert _failed(rig, "D", "conflict"), rig.events  # loudly


def test_attacker_detector_does_not_keep_the_valve_link_up():
    rig = _rig("attd")
    rig.run(2000)
    att = _attacker_detector(rig, "d")
    att.pair_button()
    _run(rig, att, 200)
    rig.valve.pair_button()  # a resident pairs both: the attacker is heard first
    _run(rig, att, 1000)
    rig.det.pair_button()
    _run(rig, att, 3 * WINDOW)
    rig.power_detector(False)
    _run(rig, att, 5000)
    assert rig.valve.link.link == "lost"  # the detector is off: the valve sees it
    assert rig.valve.link.peer == DET_MAC and rig.valve.link.key == KEY
    assert _failed(rig, "V", "conflict"), rig.events  # loudly


def test_one_side_alone_never_replaces_a_working_pairing():
    for side in ("V", "D"):
        rig = _rig("alone" + side)
        rig.run(2000)
        att = _attacker_valve(rig, side) if side == "D" else _attacker_detector(rig, side)
        att.pair_button()
        (rig.det if side == "D" else rig.valve).pair_button()  # only one resident press
        _run(rig, att, 3 * WINDOW)
        assert rig.det.key == KEY and rig.valve.link.key == KEY
        assert rig.det.link == "up" and rig.valve.link.link == "up"
        assert _failed(rig, side, "linked"), rig.events


def test_a_working_pair_re_pairs_when_both_are_pressed():
    rig = _rig("repair")
    rig.run(2000)
    rig.det.pair_button()
    rig.valve.pair_button()
    rig.run(3 * WINDOW)
    assert rig.det.key is not None and rig.det.key != KEY and rig.det.key == rig.valve.link.key
    assert rig.run_until(lambda: rig.det.link == "up" and rig.valve.link.link == "up", 3000) is not None


def test_a_pending_valve_key_expires_if_the_detector_never_uses_it():
    rig = _rig("expire", paired=False)
    rig.valve.pair_button()
    rig.det.pair_button()
    rig.run(WINDOW - 500)
    rig.power_detector(False)  # gone before its window ended: it never commits
    rig.run(3 * WINDOW)
    assert _failed(rig, "V", "no_confirm") and rig.valve.link.key is None
    assert not rig.valve.link.pairing and rig.valve.link._cand is None


def test_factory_mode_presence_frees_a_valve_held_by_an_attacker():
    from gasguard.espnow_link import provision

    rig = _rig("force", paired=False)
    att_store = FileStore(tmpdir("att-force"))
    provision(att_store, "D", KEY, VALVE_MAC)
    provision(rig.valve_store, "V", KEY, ATT_MAC)  # an attacker got in once (a lone press)
    rig.reboot_valve()
    att = DetectorLink(rig.air.radio(ATT_MAC), rig.clock, att_store, LINK, rand=rig._rand)
    _run(rig, att, 2000)
    assert rig.valve.link.link == "up"
    for force in (False, True):  # the resident presses both; then again with the valve in factory mode
        rig.valve.link.pair_button(force)
        rig.det.pair_button()
        _run(rig, att, 2 * WINDOW + 3000)
    assert _failed(rig, "V", "linked")  # without presence the attacker's link held
    assert rig.valve.link.peer == DET_MAC and rig.det.key == rig.valve.link.key != KEY


def test_detector_long_press_opens_the_window_with_presence_from_factory_mode():
    class Svc:
        factory_via = None

    rig = _rig("longpress")
    svc = Svc()
    sink = rig.det  # the app's sink for the button (devices.attach_interlock)
    sink.service = svc
    sink.event({"event": "button", "press": "short"})
    assert not rig.det.pairing
    sink.event({"event": "button", "press": "long"})
    assert rig.det.pairing and not rig.det._force
    rig.run(WINDOW + 100)
    svc.factory_via = "button"
    sink.event({"event": "button", "press": "long"})
    assert rig.det.pairing and rig.det._force


def test_no_room_to_load_the_pairing_code_fails_the_press_not_the_link():
    # The pairing code is parked (docs/heap-budget.md): a press when it cannot be loaded
    # says so (pair_failed / no_memory) and the link, its key and the close go on as before.
    import sys

    import gasguard

    class NoRoom:
        def __getattr__(self, name):
            raise MemoryError("no room for link_pair")

    rig = _rig("noroom")
    rig.run(2000)
    saved = sys.modules.get("gasguard.link_pair")
    try:
        for link in (rig.det, rig.valve.link):  # (each failed press releases the module)
            sys.modules["gasguard.link_pair"] = NoRoom()
            setattr(gasguard, "link_pair", sys.modules["gasguard.link_pair"])
            link.pair_button()
    finally:
        sys.modules.pop("gasguard.link_pair", None)
        if saved is not None:
            sys.modules["gasguard.link_pair"] = saved
        try:
            delattr(gasguard, "link_pair")
        except (AttributeError, KeyError):
            pass
    assert not rig.det.pairing and not rig.valve.link.pairing
    assert _failed(rig, "D", "no_memory") and _failed(rig, "V", "no_memory"), rig.events
    assert rig.det.key == KEY and rig.valve.link.key == KEY
    rig.det.close("co")
    assert rig.run_until(lambda: rig.det.state == "confirmed", 3000) is not None
    assert not rig.board.is_open
    rig.det.pair_button()  # with room again, a press opens the window
    assert rig.det.pairing


# --- the key agreement (X25519): what a listener and a forger get (docs/security.md) ---

def _pairing_frames(rig):
    req = [(s, f) for (s, _d, f) in rig.air.log if f[1] == F.T_PAIR_REQ]
    resp = [(s, f) for (s, _d, f) in rig.air.log if f[1] == F.T_PAIR_RESP]
    return req, resp


def _recorded_pairing(tag):
    rig = InterlockRig(tmpdir("pair-" + tag), stub_valve=True, link=LINK, keep_log=True, paired=False)
    drawn = []

    def rand(n):  # what the two ends draw: nonces and private keys
        b = rig._rand(n)
        drawn.append(b)
        return b

    rig.det.rand = rand
    rig.valve.link.rand = rand
    rig.det.pair_button()
    rig.valve.pair_button()
    rig.run(2 * WINDOW + 1000)
    assert rig.det.key is not None and rig.det.key == rig.valve.link.key
    return rig, drawn


def test_recorded_pairing_frames_do_not_give_the_key():
    rig, drawn = _recorded_pairing("listen")
    key = rig.det.key
    frames = [f for (_s, _d, f) in rig.air.log]
    req, resp = _pairing_frames(rig)
    nd, pd = F.decode_pair_request(req[0][1])
    nv, pv = F.split_pair_response(resp[0][1], nd)
    # the key is made with a private key: X25519(sk_d, pub_v) == X25519(sk_v, pub_d)
    sk = [b for b in drawn if len(b) == 32]
    assert len(sk) == 2
    secret = x25519.scalarmult(sk[0], pv)
    assert secret == x25519.scalarmult(sk[1], pd)
    assert F.pair_key(secret, nd, nv, pd, pv, DET_MAC, VALVE_MAC) == key
    # ... which never went on the air, nor the secret, nor the key; both ends forgot theirs
    for s in sk + [secret, key]:
        assert not [f for f in frames if s in f]
    assert rig.det._sk is None and rig.valve.link._sk is None
    # what the air does give: the first design's key (nonces only) is not it any more ...
    assert hmac256.digest(F.PAIR_KEY, nd + nv) != key
    # ... nor what a listener gets running our own firmware on the recording: a detector
    # in its own window hears the answer to another nonce, a valve answers with its own key
    eve_d = DetectorLink(rig.air.radio(ATT_MAC), rig.clock, FileStore(tmpdir("eve-d")), LINK, rand=rig._rand)
    eve_v = ValveLink(rig.air.radio(b"\x02\x00\x00\x00\x00\x67"), rig.clock, FileStore(tmpdir("eve-v")),
                      LINK, rand=rig._rand)
    eve_d.pair_button()
    eve_v.pair_button()
    for src, f in resp:
        eve_d._receive_one(src, f)
    for src, f in req:
        eve_v._receive_one(src, f)
    assert eve_d._cand is None and eve_d.rejected["bad_tag"] == len(resp)
    assert eve_v._pending is not None and eve_v._pending[0] != key


def test_replayed_and_forged_pairing_frames_change_nothing():
    rig, _drawn = _recorded_pairing("replay")
    key1 = rig.det.key
    req, resp = _pairing_frames(rig)
    rig.air.keep_log = False  # (the recording is what we replay; at the ESP32's heap the
    rig.air.log = []  # log of the whole test would not fit beside two devices)
    rig.run(2000)
    assert rig.det.link == "up" and rig.valve.link.link == "up"
    # outside a window: refused and counted
    nv, nd = rig.valve.link.rejected["pairing_closed"], rig.det.rejected["pairing_closed"]
    rig.valve.link._receive_one(req[0][0], req[0][1])
    rig.det._receive_one(resp[0][0], resp[0][1])
    assert rig.valve.link.rejected["pairing_closed"] == nv + 1 and rig.det.rejected["pairing_closed"] == nd + 1
    # in the next windows of both: the old answer is to an old nonce (refused, no offer);
    # the pairing is made with the real partner, under a new key
    n = len(rig.events)
    rig.det.pair_button()
    rig.valve.pair_button()
    n_bad = rig.det.rejected["bad_tag"]
    rig.det._receive_one(resp[0][0], resp[0][1])
    assert rig.det._cand is None and rig.det.rejected["bad_tag"] == n_bad + 1
    rig.run(2 * WINDOW + 1000)
    key2 = rig.det.key
    assert key2 != key1 and key2 == rig.valve.link.key
    assert not [e for (_t, _w, e) in rig.events[n:] if e.get("state") == "pair_failed"], rig.events[n:]
    # the old request replayed into a valve window (the detector not pressed): the valve
    # answers a key nobody holds (that window's private key is gone); it keeps its pairing
    rig.valve.pair_button()
    rig.valve.link._receive_one(DET_MAC, req[0][1])
    rig.run(3 * WINDOW)
    assert rig.valve.link.key == key2 == rig.det.key and rig.valve.link.link == "up"
    # a forged answer to the detector's live nonce, tagged under a key of the forger's
    # choosing: counted, the window fails loudly, the pairing stays
    _forged_answer_fails_the_window(rig, x25519.public(bytes(range(1, 33))), key2)


def _forged_answer_fails_the_window(rig, pub, key):
    rig.det.pair_button()
    rig.det._receive_one(VALVE_MAC, F.pair_response(bytes(32), rig.det._nonce, bytes(16), pub))
    assert not rig.det.pairing and _failed(rig, "D", "forged")
    rig.run(2000)
    assert rig.det.key == key == rig.valve.link.key and rig.det.link == "up"


def test_a_small_order_public_key_fails_the_window():
    rig = _rig("loworder")
    rig.run(2000)
    rig.valve.pair_button()
    n = rig.valve.link.rejected["malformed"]
    rig.valve.link._receive_one(ATT_MAC, F.pair_request(bytes(16), bytes(32)))  # u = 0
    assert rig.valve.link.rejected["malformed"] == n + 1
    assert not rig.valve.link.pairing and rig.valve.link._cand is None and _failed(rig, "V", "forged")
    _forged_answer_fails_the_window(rig, b"\x01" + bytes(31), KEY)  # u = 1


def test_a_flood_of_offers_costs_one_key_agreement():
    import sys

    rig = _rig("flood")
    rig.run(2000)
    rig.valve.pair_button()  # the window's key pair is made here
    pub = x25519.public(bytes(range(32)))
    mod = sys.modules["gasguard.x25519"]
    real = mod.scalarmult
    calls = []

    def counted(k, u):
        calls.append(1)
        return real(k, u)

    mod.scalarmult = counted
    try:
        for i in range(20):
            mac = b"\x02\x00\x00\x00\x01" + bytes((i,))
            rig.valve.link._receive_one(mac, F.pair_request(bytes((i,)) * 16, pub))
    finally:
        mod.scalarmult = real
    assert len(calls) == 1, calls
    assert not rig.valve.link.pairing and _failed(rig, "V", "conflict")


def test_a_man_in_the_middle_fails_loudly_while_the_two_devices_hear_each_other():
    # The public keys are not authenticated (no code), so an attacker in range may answer
    # the detector as a valve and the valve as a detector, each with its own key pair, even
    # under the real devices' MACs. As long as each real device also hears the other, it
    # hears two offers in its window and pairs with neither (docs/security.md#pairing).
    for spoof in (False, True):
        rig = _rig("mitm%d" % spoof, paired=False)
        att_v = _attacker_valve(rig, "mv%d" % spoof)
        att_d = DetectorLink(rig.air.radio(b"\x02\x00\x00\x00\x00\x65"), rig.clock,
                             FileStore(tmpdir("att-md%d" % spoof)), LINK, rand=rig._rand)
        att_v.pair_button()
        att_d.pair_button()
        rig.det.pair_button()
        rig.valve.pair_button()
        if spoof:  # the attacker's offers under the real partners' addresses
            sk = bytes(range(7, 39))
            pub = x25519.public(sk)
            rig.valve.link._receive_one(DET_MAC, F.pair_request(bytes(16), pub))
            nd, pd = rig.det._nonce, rig.det._pub
            key = F.pair_key(x25519.scalarmult(sk, pd), nd, bytes(16), pd, pub, DET_MAC, VALVE_MAC)
            rig.det._receive_one(VALVE_MAC, F.pair_response(key, nd, bytes(16), pub))
        for _ in range(3 * WINDOW // rig.step_ms):
            rig.step()
            att_v.poll()
            att_d.poll()
        assert rig.det.key is None and rig.valve.link.key is None, spoof
        assert _failed(rig, "D", "conflict") and _failed(rig, "V", "conflict"), rig.events
