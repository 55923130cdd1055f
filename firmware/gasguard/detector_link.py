"""Detector end of the wireless interlock: an interlock sink (see gasguard.espnow_link)."""

import struct

from gasguard.link_core import CAUSES, STATES, LinkCore, name_of

# Why a detector asks for the close, codes 1..6 ("other" = 0), as interlock_frame.REQUESTS.
_REQ = ("ch4", "co", "fault", "test", "platform", "manual")


def _req_code(cause):
    """"ch4_high" -> 1, "co" -> 2, ...: a name or name + "_..." (allocates nothing)."""
    if isinstance(cause, str):
        for i in range(6):
            r = _REQ[i]
            n = len(r)
            if cause.startswith(r) and (len(cause) == n or cause.find("_", n, n + 1) == n):
                return i + 1
    return 0


class DetectorLink(LinkCore):
    """Detector end; an interlock sink (docs/interlock.md).

    close(cause) starts one close request (a close_id); it is sent at once and
    retried with exponential backoff until the valve acknowledges it with its switch
    reading closed ("closing" acks keep the retries going), or retry_bound_ms passes. state: "idle" | "closing" | "confirmed" | "failed".
    fault: None | "interlock_unpaired" | "interlock_no_ack" | "valve_fault" | "link_lost".
    The close path (CLOSE frame, tag, send, retries, the ACK check) is resident and
    builds its frames in buffers made at construction; pairing is loaded only while it runs.
    """

    ROLE = "D"
    ACCEPT = (0x81, 0x82)  # STATUS, ACK
    SPARE = 512  # one tag: the CLOSE's (or the ACK's check)

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
        if self.state == "confirmed" and self.valve_state == "closed":
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
        # the next attempt is due first: whatever fails below is retried from poll()
        self._retry_at = self.clock.ticks_add(now, self._delay)
        self._delay = min(self._delay * 2, self.cfg["retry_max_ms"])
        ctr = self._next()
        if not ctr:
            self._fail("counter_exhausted")
            return
        if not self.close_id:
            self.close_id = ctr
        self.attempts += 1
        struct.pack_into("<IB", self._fc, 10, self.close_id, _req_code(self.cause))
        self._tx(self._fc, 0x02, ctr)

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
            self._rare("tx")  # our PAIR_REQ, every pair_retry_ms of the window
        self._supervise()

    def _heartbeat(self):
        ctr = self._next(True)
        if ctr:
            self._fh[10] = (1 if self.state == "closing" else 0) | (2 if self.pairing else 0)
            self._tx(self._fh, 0x01, ctr)

    def _body(self, ftype):
        return 3 if ftype == 0x81 else 6 if ftype == 0x82 else -1

    def _handle(self, ftype, data):
        if ftype == 0x81:  # STATUS: state, cause, flags
            self._valve(data[10], data[11])
            if data[12] & 2 and self.pairing:
                self._peer_pairing = True  # said under the current key: the valve is pairing
            if self.state == "confirmed" and self.valve_state == "open":
                self.state = "idle"  # reopened by hand since; a new close() starts over
            return
        # ACK: close_id, state, cause
        self._valve(data[14], data[15])
        if self.state != "closing" or struct.unpack_from("<I", data, 10)[0] != self.close_id:
            return  # an ack for an earlier request: duplicates are harmless
        if self.valve_state == "closed":
            self.state = "confirmed"
            self.last_latency_ms = self.clock.ticks_diff(self.clock.ticks_ms(), self._close_started)
            self.emit({"event": "interlock", "state": "confirmed", "via": "espnow", "cause": self.valve_cause})
        elif self.valve_state == "fault":
            self._fail("valve_fault")
        elif self.valve_state == "open":
            self.state = "idle"  # this request was executed before and the valve reopened by hand
        else:
            # "closing"/"unknown": tripped, switch not yet closed. The valve acks again
            # when it closes; keep asking, but slowly.
            now = self.clock.ticks_ms()
            slow = self.clock.ticks_add(now, self.cfg["retry_max_ms"])
            if self.clock.ticks_diff(slow, self._retry_at) > 0:
                self._retry_at = slow
            self._delay = self.cfg["retry_max_ms"]

    def _valve(self, state, cause):
        self.valve_state = name_of(STATES, state)
        self.valve_cause = name_of(CAUSES, cause)

    # An app sink too (devices.attach_interlock): the long press of the test/hush button
    # (3 s) opens the pairing window (docs/security.md); in factory mode entered with the
    # button held at power-up (physical presence) that window may replace a working
    # pairing. service: the app's console (its factory_via), set when attached. (It was a
    # separate PairButton sink: a class, its constructor and an object resident for this.)
    service = None

    def event(self, ev):
        if ev.get("event") == "button" and ev.get("press") == "long":
            svc = self.service
            self.pair_button(svc is not None and svc.factory_via == "button")
