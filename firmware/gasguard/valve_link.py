"""Valve end of the wireless interlock (see gasguard.espnow_link)."""

from gasguard import interlock_frame as F
from gasguard.interlock_keys import provision
from gasguard.link_core import LinkCore


class ValveLink(LinkCore):
    """Valve end. The controller gives two callables:

    on_close(request) -> None   trip the valve (request: the detector's cause name)
    get_state() -> (state, cause)   names from interlock_frame.STATES / CAUSES
    Close ids are executed once each (they only grow); duplicates are just acknowledged.
    """

    ROLE = "V"
    ACCEPT = (F.T_HEARTBEAT, F.T_CLOSE)

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None, on_close=None, get_state=None):
        LinkCore.__init__(self, radio, clock, store, cfg, emit, rand)
        self.on_close = on_close
        self.get_state = get_state
        self.done_close_id = 0
        self.closes_executed = 0
        self.acks_sent = 0
        self._pending = None  # (key, nonce_v) for the one detector answered (self._cand)

    def _install(self, key, peer):
        LinkCore._install(self, key, peer)
        self.done_close_id = 0

    def _codes(self):
        if self.get_state is None:
            return 0, 0
        s, c = self.get_state()
        return F.code_of(F.STATES, s), F.code_of(F.CAUSES, c)

    def poll(self):
        self._receive()
        self._supervise()
        if self._cand is not None and not self.pairing and \
                self.clock.ticks_diff(self.clock.ticks_ms(), self._pair_until) > 0:
            self._pair_failed("no_confirm")  # the detector never used the key: keep the old one

    def _heartbeat(self):
        ctr = self._next()
        if ctr:
            s, c = self._codes()
            flags = (1 if self.link == "up" else 0) | (2 if self.pairing or self._cand else 0)
            self._send(self.peer, F.status(self.key, ctr, self.seen, s, c, flags))

    def _handle(self, ftype, fields):
        if ftype == F.T_CLOSE:
            close_id, req = fields
            if close_id > self.done_close_id:
                self.done_close_id = close_id
                self.closes_executed += 1
                if self.on_close is not None:
                    self.on_close(F.name_of(F.REQUESTS, req))
            self._ack(close_id)
        elif fields[0] & 2 and self.pairing:
            self._peer_pairing = True  # said under the current key: the detector is pairing
        # HEARTBEAT: freshness already recorded; our STATUS goes out on our own schedule.

    def _ack(self, close_id):
        ctr = self._next()
        if ctr:
            s, c = self._codes()
            self.acks_sent += 1
            self._send(self.peer, F.ack(self.key, ctr, self.seen, close_id, s, c))

    def valve_closed(self):
        """The controller saw the switch close: acknowledge the last close request at once
        (not only on its next retry). Harmless when it was acknowledged already."""
        if self.key is not None and self.done_close_id and self.synced:
            self._ack(self.done_close_id)

    # --- pairing: answer exactly one detector for the whole window; then wait for
    # its first authentic frame under the new key (docs/security.md)
    def _pair_frame(self, mac, ftype, data):
        if ftype != F.T_PAIR_REQ:
            raise F.FrameError("unsupported")
        nonce_d = F.decode_pair_request(data)
        first = self._cand is None
        if self._offer((bytes(mac), nonce_d)):  # else a second detector: refuse to guess
            if first:
                nonce_v = bytes(self.rand(F.NONCE_LEN))
                self._pending = (F.pair_key(nonce_d, nonce_v), nonce_v)
            self._send(mac, F.pair_response(nonce_d, self._pending[1]))

    def _pair_commit(self, c):
        # the detector commits at the end of its own window: wait one more window for it
        self._pair_until = self.clock.ticks_add(self.clock.ticks_ms(), self.cfg["pair_window_ms"])

    def _pending_frame(self, mac, data):
        c = self._cand
        if c is None or self.pairing or bytes(mac) != c[0]:
            return False
        key = self._pending[0]
        try:
            F.decode(key, data, self.ACCEPT)
        except F.FrameError:
            return False
        provision(self.store, self.ROLE, key, c[0])
        self._cand = None
        self._paired(key, c[0])
        self._receive_one(mac, data)  # now under the committed key
        return True

    def status(self):
        d = self.link_status()
        d["closes_executed"] = self.closes_executed
        d["acks_sent"] = self.acks_sent
        return d
