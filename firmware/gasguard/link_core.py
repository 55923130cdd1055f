"""The protocol core shared by both ends of the interlock link (see gasguard.espnow_link).

Authentication, freshness (counter above the last accepted, echo at or above our
boot floor), heartbeats, link supervision, rejected-frame counters, pairing window.
"""

import os

from gasguard import interlock_frame as F
from gasguard.interlock_keys import REJECT_REASONS, FrameCounter, link_config, load_pairing, provision


def _nop(ev):
    pass


class LinkCore:
    """Protocol core shared by both ends. Subclasses set ROLE, ACCEPT and _handle()."""

    ROLE = "?"
    ACCEPT = ()

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None):
        self.cfg = link_config(cfg)
        self.radio = radio
        self.clock = clock
        self.store = store
        self.emit = emit or _nop
        self.rand = rand or os.urandom
        self.rejected = {}
        for r in REJECT_REASONS:
            self.rejected[r] = 0
        self.sent = 0
        self.send_failures = 0
        self.accepted = 0
        self._reported_rejects = 0
        self._reject_report_at = clock.ticks_ms()
        self.pairing = False
        self._pair_until = 0
        self._cand = None  # the one pairing offer of this window
        self.key = None
        self.peer = None
        self.counter = None
        p = load_pairing(store)
        if p is not None and p[0] == self.ROLE:
            self._install(p[2], p[1])
        self.link = "down" if self.key is not None else "unpaired"
        now = clock.ticks_ms()
        self.last_fresh_ms = now
        self._hb_at = now  # first heartbeat on the first poll
        self._sync_at = now

    # --- keys and freshness -------------------------------------------------
    def _install(self, key, peer):
        self.key = bytes(key)
        self.peer = bytes(peer)
        self.counter = FrameCounter(self.store, self.key, self.cfg["counter_block"])
        self.last_rx = 0  # highest peer counter accepted
        self.seen = 0  # highest authentic peer counter seen (what we echo)
        self.synced = False

    def provision(self, key, peer_mac):
        """Factory provisioning on a running device: store and use a shared key."""
        provision(self.store, self.ROLE, key, peer_mac)
        self._paired(key, peer_mac)

    def _paired(self, key, peer):
        self._install(key, peer)
        self.pairing = False
        self.last_fresh_ms = self.clock.ticks_ms()
        self._set_link("down")
        self.emit({"event": "link", "state": "paired"})

    def _set_link(self, state):
        if state != self.link:
            self.link = state
            if state in ("up", "lost"):
                self.emit({"event": "link", "state": state})

    def _reject(self, reason):
        self.rejected[reason] += 1

    def rejected_total(self):
        """Rejected frames, without "stale" ones (one or two are normal after every reboot)."""
        n = 0
        for r in REJECT_REASONS:
            if r != "stale":
                n += self.rejected[r]
        return n

    def _send(self, mac, frame):
        ok = False
        try:
            ok = bool(self.radio.send(mac, frame))
        except OSError:
            ok = False
        self.sent += 1
        if not ok:
            self.send_failures += 1
        return ok

    def _next(self):
        return self.counter.take()

    def _receive_one(self, mac, data):
        """Authenticate and check freshness; call _handle() for fresh frames."""
        try:
            ftype, ctr, echo = F.peek(data)
        except F.FrameError as e:
            self._reject(e.reason)
            return
        if ftype in (F.T_PAIR_REQ, F.T_PAIR_RESP):
            if not self.pairing:
                self._reject("pairing_closed")
                return
            try:
                self._pair_frame(mac, ftype, data)
            except F.FrameError as e:
                self._reject(e.reason)
            return
        if self.key is None:
            if not self._pending_frame(mac, data):
                self._reject("unpaired")
            return
        if bytes(mac) != self.peer:
            if self._pending_frame(mac, data):
                return
            self._reject("foreign")
            return
        try:
            ftype, ctr, echo, fields = F.decode(self.key, data, self.ACCEPT)
        except F.FrameError as e:
            if e.reason == "bad_tag" and self._pending_frame(mac, data):
                return
            self._reject(e.reason)
            return
        if ctr <= self.last_rx:
            self._reject("replay")
            return
        if ctr > self.seen:
            self.seen = ctr
        if not self.synced and echo < self.counter.floor:
            self._reject("stale")
            self._sync_reply()
            return
        if echo >= self.counter.next_value:
            self._reject("malformed")  # echoes a counter we never sent
            return
        self.synced = True
        self.last_rx = ctr
        self.accepted += 1
        self.last_fresh_ms = self.clock.ticks_ms()
        self._set_link("up")
        self._handle(ftype, fields)

    def _pending_frame(self, mac, data):
        return False

    def _sync_reply(self):
        now = self.clock.ticks_ms()
        if self.clock.ticks_diff(now, self._sync_at) >= 0:
            self._sync_at = self.clock.ticks_add(now, self.cfg["sync_min_ms"])
            self._heartbeat()

    def _receive(self):
        for _ in range(self.cfg["max_frames_per_poll"]):
            got = self.radio.poll()
            if got is None:
                break
            self._receive_one(got[0], got[1])

    def _supervise(self):
        now = self.clock.ticks_ms()
        # Deadlines in the past are pulled up to now, so they never age past the 2**29 ms
        # where ticks_diff turns negative (an idle week must not mute the sync reply).
        if self.clock.ticks_diff(now, self._sync_at) > 0:
            self._sync_at = now
        if self.clock.ticks_diff(now, self._reject_report_at) > 0:
            self._reject_report_at = now
        if self.key is not None:
            if self.clock.ticks_diff(now, self._hb_at) >= 0:
                self._hb_at = self.clock.ticks_add(now, self.cfg["heartbeat_ms"])
                self._heartbeat()
            if self.link != "lost" and self.clock.ticks_diff(now, self.last_fresh_ms) > self.cfg["link_timeout_ms"]:
                self._set_link("lost")
        if self.pairing and self.clock.ticks_diff(now, self._pair_until) > 0:
            self.pairing = False
            self._pair_end()
        n = self.rejected_total()
        if n != self._reported_rejects and self.clock.ticks_diff(now, self._reject_report_at) >= 0:
            self._reject_report_at = self.clock.ticks_add(now, self.cfg["reject_report_ms"])
            self._reported_rejects = n
            counts = {}
            for r in REJECT_REASONS:
                if self.rejected[r]:
                    counts[r] = self.rejected[r]
            self.emit({"event": "link", "state": "rejected", "total": n, "counts": counts})

    def pair_button(self, force=False):
        """The pairing button was pressed: open a pairing window (docs/security.md).

        The window hears offers for its whole length; exactly one peer may offer, a second
        aborts it. A pairing whose link is up is replaced only if its peer says, under the
        current key, that it is pairing too, or with force (physical presence: factory mode).
        """
        if self.pairing:
            return  # one window, one nonce: a second press must not look like a second peer
        self.pairing = True
        self._force = force
        self._peer_pairing = False
        self._cand = None
        self._pair_until = self.clock.ticks_add(self.clock.ticks_ms(), self.cfg["pair_window_ms"])
        self._pair_start()
        self.emit({"event": "link", "state": "pairing"})

    def _offer(self, cand):
        """A pairing offer (mac, ...) heard in the window: keep the first; a different one aborts."""
        if self._cand is None:
            self._cand = cand
        elif self._cand != cand:
            self._pair_failed("conflict")
        return self.pairing

    def _pair_failed(self, reason):
        self.pairing = False
        self._cand = None
        self.emit({"event": "link", "state": "pair_failed", "reason": reason})

    def _pair_end(self):
        c = self._cand
        if c is None:
            self._pair_failed("no_answer")
        elif self.key is None or self.link != "up" or self._force or (self._peer_pairing and c[0] == self.peer):
            self._pair_commit(c)
        else:
            self._pair_failed("linked")  # a working pairing does not give way to one side alone

    def _pair_start(self):
        pass

    def link_status(self):
        return {
            "link": self.link,
            "paired": self.key is not None,
            "pairing": self.pairing,
            "sent": self.sent,
            "send_failures": self.send_failures,
            "accepted": self.accepted,
            "rejected": self.rejected_total(),
            "rejected_by_reason": dict(self.rejected),
            "counter_writes": self.counter.writes if self.counter else 0,
            "store_errors": self.counter.store_errors if self.counter else 0,
        }
