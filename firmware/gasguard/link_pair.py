"""Pairing of the interlock link, both ends (docs/security.md): parked code.

Only runs while a person holds a pairing window open (or a factory provisions a key), so
it is not resident: gasguard.link_core._rare() imports it for a call, keeps it while the
window or the valve's pending offer lasts and releases it afterwards (docs/heap-budget.md).
Each function takes the link (l) it works on. The close path never comes here.

The window hears offers for its whole length; exactly one peer may offer, a second aborts
it. A pairing whose link is up is replaced only if its peer says, under the current key,
that it is pairing too, or with force (physical presence: factory mode).

The link key comes from an X25519 key agreement (gasguard.x25519): each window makes a key
pair, the public halves travel in PAIR_REQ / PAIR_RESP, the shared secret never does; the
key is HMAC-SHA256 under it over both nonces, public keys and MACs (interlock_frame.pair_key).
"""

from gasguard import interlock_frame as F
from gasguard import interlock_keys, x25519


def button(l, force, app=None):
    if app is None:  # the detector's link: its console's device is its app
        app = getattr(getattr(l, "service", None), "device", None)
    l._app = app  # the device that tells the person when the window fails (failed())
    mac = getattr(l.radio, "mac", None)
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        failed(l, "no_address")
        return  # the key is bound to both addresses: without ours there is no pairing
    l.pairing = True
    l._force = force
    l._peer_pairing = False
    l._cand = None
    l._mac_own = bytes(mac)
    # this window's key pair: the private key never leaves RAM and is forgotten when the
    # window ends (_forget), so nothing recorded on the air or read from flash gives it
    l._nonce = bytes(l.rand(F.NONCE_LEN))
    l._sk = bytes(l.rand(32))
    l._pub = x25519.public(l._sk)
    now = l.clock.ticks_ms()
    l._pair_until = l.clock.ticks_add(now, l.cfg["pair_window_ms"])
    if l.ROLE == "D":  # we broadcast PAIR_REQ with our nonce and public key for the whole window
        l._pair_tx_at = now
    l.emit({"event": "link", "state": "pairing"})


def tx(l):
    l._pair_tx_at = l.clock.ticks_add(l.clock.ticks_ms(), l.cfg["pair_retry_ms"])
    l._send(b"\xff\xff\xff\xff\xff\xff", F.pair_request(l._nonce, l._pub))


def _forget(l):
    l._sk = None  # the window's private key: one key agreement, then gone


def provision(l, key, peer):
    """Store and use a shared key (factory provisioning, or the end of a pairing)."""
    interlock_keys.provision(l.store, l.ROLE, key, peer)
    _paired(l, key, peer)


def _paired(l, key, peer):
    l._install(key, peer)
    l.pairing = False
    l.last_fresh_ms = l.clock.ticks_ms()
    l._set_link("down")
    l.emit({"event": "link", "state": "paired"})


def frame(l, mac, ftype, data):
    """A PAIR_REQ (valve) or PAIR_RESP (detector) heard in the window.

    One key agreement per window and device: the first well-formed offer's key is
    computed (X25519, docs/security.md#pairing); an offer that then gives no valid key
    (a small-order public key, or a response whose tag fails under the key it carries)
    fails the window loudly ("forged"), and any different offer aborts it ("conflict"),
    both without computing anything. So a flood of offers costs one key agreement."""
    mac = bytes(mac)
    try:
        if l.ROLE == "D":
            if ftype != F.T_PAIR_RESP:
                raise F.FrameError("unsupported")
            nonce_v, pub_v = F.split_pair_response(data, l._nonce)
            c = l._cand
            if c is None:
                try:
                    key = F.pair_key(x25519.scalarmult(l._sk, pub_v), l._nonce, nonce_v,
                                     l._pub, pub_v, l._mac_own, mac)
                except F.FrameError:
                    key = None
                _forget(l)
                if key is None or not F.authentic(key, data):
                    l._reject("bad_tag")
                    failed(l, "forged")
                    return
                _offer(l, (mac, key, nonce_v + pub_v))  # committed at the end of the window
            elif c[0] != mac or c[2] != nonce_v + pub_v:
                _offer(l, (mac, None, None))  # a second valve: conflict
            elif not F.authentic(c[1], data):
                raise F.FrameError("bad_tag")  # a copy with a broken tag: counted, nothing else
            return
        # valve: answer exactly one detector for the whole window; then wait for its first
        # authentic frame under the new key (pending())
        if ftype != F.T_PAIR_REQ:
            raise F.FrameError("unsupported")
        nonce_d, pub_d = F.decode_pair_request(data)
        if l._cand is None:
            try:
                key = F.pair_key(x25519.scalarmult(l._sk, pub_d), nonce_d, l._nonce,
                                 pub_d, l._pub, mac, l._mac_own)
            except F.FrameError:
                key = None
            _forget(l)
            if key is None:
                l._reject("malformed")
                failed(l, "forged")
                return
            l._pending = (key, F.pair_response(key, nonce_d, l._nonce, l._pub))
        if _offer(l, (mac, nonce_d + pub_d)):  # else a second detector: refuse to guess
            l._send(mac, l._pending[1])
    except F.FrameError as e:
        l._reject(e.reason)


def _offer(l, cand):
    """Keep the first offer (mac, ...) of the window; a different one aborts it."""
    if l._cand is None:
        l._cand = cand
    elif l._cand != cand:
        failed(l, "conflict")
    return l.pairing


def failed(l, reason):
    l.pairing = False
    l._cand = None
    if l.ROLE == "V":
        l._pending = None
    _forget(l)
    l.emit({"event": "link", "state": "pair_failed", "reason": reason})
    app = getattr(l, "_app", None)
    if app is not None:  # tell the person who pressed the button (not resident: pair_note)
        try:
            from gasguard import pair_note

            pair_note.start(app, l, reason)
        except Exception:  # (a MemoryError: no room to show it) the event says why; the
            pass  # indication must never stop the link's poll


def end(l):
    """The window has closed (l.pairing is already False)."""
    _forget(l)
    c = l._cand
    if c is None:
        failed(l, "no_answer")
    elif l.key is None or l.link != "up" or l._force or (l._peer_pairing and c[0] == l.peer):
        _commit(l, c)
    else:
        failed(l, "linked")  # a working pairing does not give way to one side alone


def _commit(l, c):
    now = l.clock.ticks_ms()
    if l.ROLE == "V":
        # the detector commits at the end of its own window: wait one more window for it
        l._pair_until = l.clock.ticks_add(now, l.cfg["pair_window_ms"])
        return
    provision(l, c[1], c[0])
    l._cand = None
    if l.state == "closing":
        l.close_id = 0  # the next retry takes a close id from the new key's counter
        l._retry_at = now
    elif l.state == "failed":
        l.state = "idle"
    l._fault = None
    l._hb_at = now  # a heartbeat under the new key confirms it


def pending(l, mac, data):
    """Valve: a frame from the detector answered; authentic under the offered key, it
    commits the pairing and is then received under it. True when it was taken."""
    key = l._pending[0]
    try:
        F.decode(key, data, l.ACCEPT)
    except F.FrameError:
        return False
    c = l._cand
    interlock_keys.provision(l.store, l.ROLE, key, c[0])
    l._cand = None
    _paired(l, key, c[0])
    l._receive_one(mac, data)  # now under the committed key
    return True
