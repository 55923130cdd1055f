"""The wireless interlock link over ESP-NOW: pairing, counters, freshness, retries.

Two ends share one protocol core (_Link):
  DetectorLink  on the detector: an interlock sink (close(cause), poll(), fault, state)
                that sends CLOSE until the valve acknowledges it, plus heartbeats.
  ValveLink     on the valve controller: accepts HEARTBEAT and CLOSE, answers with ACK
                and STATUS, supervises the link (link_lost) for the controller.

Replay protection without writing every received counter to flash:
  * every sender's counter strictly increases per key and survives reboots: it is
    reserved in blocks of `counter_block` (one flash write per block, and one per boot);
  * every frame carries `echo`, the highest authentic counter its sender has seen
    from us. After a boot (or a new pairing) we accept a peer frame only once its echo
    is >= the first counter we used in this boot (the "floor"): it must have been made
    after it heard us, so it is not a recording. From then on a frame is fresh only
    if its counter is above the last one accepted. A peer reboot needs nothing: its
    counter jumps to a new block, which is still above.
Frames are never trusted by MAC; the MAC check only saves an HMAC on foreign traffic.

Radio: send(mac, data) -> bool, poll() -> (mac, data) or None. Nothing here blocks.
"""

import os

from gasguard import interlock_frame as F
from gasguard.interlock_keys import (  # noqa: F401  (re-exported: the link's public API)
    BROADCAST,
    LINK_DEFAULTS,
    REJECT_REASONS,
    FrameCounter,
    link_config,
    load_pairing,
    provision,
)


def _nop(ev):
    pass


class _Link:
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
        if self.key is not None:
            if self.clock.ticks_diff(now, self._hb_at) >= 0:
                self._hb_at = self.clock.ticks_add(now, self.cfg["heartbeat_ms"])
                self._heartbeat()
            if self.link != "lost" and self.clock.ticks_diff(now, self.last_fresh_ms) > self.cfg["link_timeout_ms"]:
                self._set_link("lost")
        if self.pairing and self.clock.ticks_diff(now, self._pair_until) > 0:
            self.pairing = False
            self.emit({"event": "link", "state": "pair_failed"})
        n = self.rejected_total()
        if n != self._reported_rejects and self.clock.ticks_diff(now, self._reject_report_at) >= 0:
            self._reject_report_at = self.clock.ticks_add(now, self.cfg["reject_report_ms"])
            self._reported_rejects = n
            counts = {}
            for r in REJECT_REASONS:
                if self.rejected[r]:
                    counts[r] = self.rejected[r]
            self.emit({"event": "link", "state": "rejected", "total": n, "counts": counts})

    def pair_button(self):
        """The pairing button was pressed: open a pairing window."""
        self.pairing = True
        self._pair_until = self.clock.ticks_add(self.clock.ticks_ms(), self.cfg["pair_window_ms"])
        self._pair_start()
        self.emit({"event": "link", "state": "pairing"})

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


class DetectorLink(_Link):
    """Detector end; an interlock sink (docs/interlock.md).

    close(cause) starts one close request (a close_id); it is sent at once and
    retried with exponential backoff until the valve acknowledges it or
    retry_bound_ms passes. state: "idle" | "closing" | "confirmed" | "failed".
    fault: None | "interlock_unpaired" | "interlock_no_ack" | "valve_fault" | "link_lost".
    """

    ROLE = "D"
    ACCEPT = (F.T_STATUS, F.T_ACK)

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None):
        _Link.__init__(self, radio, clock, store, cfg, emit, rand)
        self.state = "idle"
        self._fault = None
        self.close_id = 0
        self.cause = None
        self.valve_state = "unknown"
        self.valve_cause = "none"
        self.attempts = 0
        self.last_latency_ms = None
        self._nonce = None
        self._pair_tx_at = 0

    @property
    def fault(self):
        if self.key is None:
            return "interlock_unpaired"
        if self._fault is not None:
            return self._fault
        if self.link == "lost":
            return "link_lost"
        return None

    def close(self, cause="other"):
        """Request the valve to close. Idempotent, never blocks."""
        if self.key is None:
            if self.state != "failed":
                self.state = "failed"
                self.emit({"event": "interlock", "state": "failed", "via": "espnow", "reason": "unpaired"})
            return
        if self.state == "closing":
            return
        if self.state == "confirmed" and self.valve_state in ("closing", "closed"):
            return
        self.cause = cause
        self.close_id = 0
        self._fault = None
        self.state = "closing"
        self.attempts = 0
        now = self.clock.ticks_ms()
        self._close_started = now
        self._delay = self.cfg["retry_initial_ms"]
        self._send_close(now)

    def _send_close(self, now):
        ctr = self._next()
        if not ctr:
            self._fail("counter_exhausted")
            return
        if not self.close_id:
            self.close_id = ctr
        self.attempts += 1
        self._send(self.peer, F.close(self.key, ctr, self.seen, self.close_id, F.request_code(self.cause)))
        self._retry_at = self.clock.ticks_add(now, self._delay)
        self._delay = min(self._delay * 2, self.cfg["retry_max_ms"])

    def _fail(self, reason):
        self.state = "failed"
        self._fault = "valve_fault" if reason == "valve_fault" else "interlock_no_ack"
        self.emit({"event": "interlock", "state": "failed", "via": "espnow", "reason": reason})

    def poll(self):
        self._receive()
        now = self.clock.ticks_ms()
        if self.state == "closing" and self.clock.ticks_diff(now, self._retry_at) >= 0:
            if self.clock.ticks_diff(now, self._close_started) >= self.cfg["retry_bound_ms"]:
                self._fail("no_ack")
            else:
                self._send_close(now)
        if self.pairing and self.clock.ticks_diff(now, self._pair_tx_at) >= 0:
            self._pair_tx_at = self.clock.ticks_add(now, self.cfg["pair_retry_ms"])
            self._send(BROADCAST, F.pair_request(self._nonce))
        self._supervise()

    def _heartbeat(self):
        ctr = self._next()
        if ctr:
            flags = 1 if self.state == "closing" else 0
            self._send(self.peer, F.heartbeat(self.key, ctr, self.seen, flags))

    def _handle(self, ftype, fields):
        if ftype == F.T_STATUS:
            state, cause, _flags = fields
            self._valve(state, cause)
            if self.state == "confirmed" and self.valve_state == "open":
                self.state = "idle"  # reopened by hand since; a new close() starts over
        elif ftype == F.T_ACK:
            close_id, state, cause = fields
            self._valve(state, cause)
            if self.state != "closing" or close_id != self.close_id:
                return  # an ack for an earlier request: duplicates are harmless
            if self.valve_state in ("closing", "closed"):
                self.state = "confirmed"
                self.last_latency_ms = self.clock.ticks_diff(self.clock.ticks_ms(), self._close_started)
                self.emit({"event": "interlock", "state": "confirmed", "via": "espnow", "cause": self.valve_cause})
            elif self.valve_state == "fault":
                self._fail("valve_fault")
            else:
                self.state = "idle"

    def _valve(self, state, cause):
        self.valve_state = F.name_of(F.STATES, state)
        self.valve_cause = F.name_of(F.CAUSES, cause)

    # --- pairing: we broadcast PAIR_REQ with our nonce until a valve answers ----
    def _pair_start(self):
        self._nonce = bytes(self.rand(F.NONCE_LEN))
        self._pair_tx_at = self.clock.ticks_ms()

    def _pair_frame(self, mac, ftype, data):
        if ftype != F.T_PAIR_RESP:
            raise F.FrameError("unsupported")
        key, _nv = F.decode_pair_response(data, self._nonce)
        provision(self.store, self.ROLE, key, mac)
        self._paired(key, mac)
        self.state = "idle"
        self._fault = None
        self._hb_at = self.clock.ticks_ms()  # a heartbeat under the new key confirms it

    def status(self):
        d = self.link_status()
        d["state"] = self.state
        d["fault"] = self.fault
        d["valve_state"] = self.valve_state
        d["valve_cause"] = self.valve_cause
        d["close_attempts"] = self.attempts
        return d


class ValveLink(_Link):
    """Valve end. The controller gives two callables:

    on_close(request) -> None   trip the valve (request: the detector's cause name)
    get_state() -> (state, cause)   names from interlock_frame.STATES / CAUSES
    Close ids are executed once each (they only grow); duplicates are just acknowledged.
    """

    ROLE = "V"
    ACCEPT = (F.T_HEARTBEAT, F.T_CLOSE)

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None, on_close=None, get_state=None):
        _Link.__init__(self, radio, clock, store, cfg, emit, rand)
        self.on_close = on_close
        self.get_state = get_state
        self.done_close_id = 0
        self.closes_executed = 0
        self.acks_sent = 0
        self._pending = None  # (key, mac, nonce_d) during a pairing window

    def _install(self, key, peer):
        _Link._install(self, key, peer)
        self.done_close_id = 0

    def _codes(self):
        if self.get_state is None:
            return 0, 0
        s, c = self.get_state()
        return F.code_of(F.STATES, s), F.code_of(F.CAUSES, c)

    def poll(self):
        self._receive()
        self._supervise()

    def _heartbeat(self):
        ctr = self._next()
        if ctr:
            s, c = self._codes()
            self._send(self.peer, F.status(self.key, ctr, self.seen, s, c, 1 if self.link == "up" else 0))

    def _handle(self, ftype, fields):
        if ftype == F.T_CLOSE:
            close_id, req = fields
            if close_id > self.done_close_id:
                self.done_close_id = close_id
                self.closes_executed += 1
                if self.on_close is not None:
                    self.on_close(F.name_of(F.REQUESTS, req))
            ctr = self._next()
            if ctr:
                s, c = self._codes()
                self.acks_sent += 1
                self._send(self.peer, F.ack(self.key, ctr, self.seen, close_id, s, c))
        # HEARTBEAT: freshness already recorded; our STATUS goes out on our own schedule.

    # --- pairing: answer one detector's PAIR_REQ; commit on its first authentic frame
    def _pair_start(self):
        self._pending = None

    def _pair_frame(self, mac, ftype, data):
        if ftype != F.T_PAIR_REQ:
            raise F.FrameError("unsupported")
        nonce_d = F.decode_pair_request(data)
        mac = bytes(mac)
        p = self._pending
        if p is not None and p[1] != mac:
            # two detectors in pairing mode at once: refuse to guess
            self._pending = None
            self.pairing = False
            self.emit({"event": "link", "state": "pair_failed", "reason": "conflict"})
            return
        if p is None or p[2] != nonce_d:
            nonce_v = bytes(self.rand(F.NONCE_LEN))
            p = (F.pair_key(nonce_d, nonce_v), mac, nonce_d, nonce_v)
            self._pending = p
        self._send(mac, F.pair_response(p[2], p[3]))

    def _pending_frame(self, mac, data):
        p = self._pending
        if p is None or not self.pairing or bytes(mac) != p[1]:
            return False
        try:
            F.decode(p[0], data, self.ACCEPT)
        except F.FrameError:
            return False
        provision(self.store, self.ROLE, p[0], p[1])
        self._pending = None
        self._paired(p[0], p[1])
        self._receive_one(mac, data)  # now under the committed key
        return True

    def status(self):
        d = self.link_status()
        d["closes_executed"] = self.closes_executed
        d["acks_sent"] = self.acks_sent
        return d
