"""Pairing of the interlock link, both ends (docs/security.md): parked code.

Only runs while a person holds a pairing window open (or a factory provisions a key), so
it is not resident: gasguard.link_core._rare() imports it for a call, keeps it while the
window or the valve's pending offer lasts and releases it afterwards (docs/heap-budget.md).
Each function takes the link (l) it works on. The close path never comes here.

The window hears offers for its whole length; exactly one peer may offer, a second aborts
it. A pairing whose link is up is replaced only if its peer says, under the current key,
that it is pairing too, or with force (physical presence: factory mode).
"""

from gasguard import interlock_frame as F
from gasguard import interlock_keys


def button(l, force):
    l.pairing = True
    l._force = force
    l._peer_pairing = False
    l._cand = None
    now = l.clock.ticks_ms()
    l._pair_until = l.clock.ticks_add(now, l.cfg["pair_window_ms"])
    if l.ROLE == "D":  # we broadcast PAIR_REQ with our nonce for the whole window
        l._nonce = bytes(l.rand(F.NONCE_LEN))
        l._pair_tx_at = now
    l.emit({"event": "link", "state": "pairing"})


def tx(l):
    l._pair_tx_at = l.clock.ticks_add(l.clock.ticks_ms(), l.cfg["pair_retry_ms"])
    l._send(b"\xff\xff\xff\xff\xff\xff", F.pair_request(l._nonce))


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
    """A PAIR_REQ (valve) or PAIR_RESP (detector) heard in the window."""
    try:
        if l.ROLE == "D":
            if ftype != F.T_PAIR_RESP:
                raise F.FrameError("unsupported")
            key, _nv = F.decode_pair_response(data, l._nonce)
            _offer(l, (bytes(mac), key))  # committed at the end of the window, if still alone
            return
        # valve: answer exactly one detector for the whole window; then wait for its first
        # authentic frame under the new key (pending())
        if ftype != F.T_PAIR_REQ:
            raise F.FrameError("unsupported")
        nonce_d = F.decode_pair_request(data)
        first = l._cand is None
        if _offer(l, (bytes(mac), nonce_d)):  # else a second detector: refuse to guess
            if first:
                nonce_v = bytes(l.rand(F.NONCE_LEN))
                l._pending = (F.pair_key(nonce_d, nonce_v), nonce_v)
            l._send(mac, F.pair_response(nonce_d, l._pending[1]))
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
    l.emit({"event": "link", "state": "pair_failed", "reason": reason})


def end(l):
    """The window has closed (l.pairing is already False)."""
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
