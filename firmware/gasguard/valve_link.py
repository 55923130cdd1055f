"""Valve end of the wireless interlock (see gasguard.espnow_link)."""

import struct

from gasguard.link_core import CAUSES, STATES, LinkCore, name_of

# Why a detector asked for the close (index = code), as interlock_frame.REQUESTS.
REQUESTS = ("other", "ch4", "co", "fault", "test", "platform", "manual")


def _code(table, name):
    for i in range(len(table)):
        if table[i] == name:
            return i
    return 0


class ValveLink(LinkCore):
    """Valve end. The controller gives two callables:

    on_close(request) -> None   trip the valve (request: the detector's cause name)
    get_state() -> (state, cause)   names from interlock_frame.STATES / CAUSES
    Close ids are executed once each (they only grow); duplicates are just acknowledged.
    ACK and STATUS are built in buffers made at construction; pairing is loaded only while it runs.
    """

    ROLE = "V"
    ACCEPT = (0x01, 0x02)  # HEARTBEAT, CLOSE
    SPARE = 768  # two tags in one call: the CLOSE's check and the ACK's

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None, on_close=None, get_state=None):
        self.on_close = on_close
        self.get_state = get_state
        LinkCore.__init__(self, radio, clock, store, cfg, emit, rand)

    def _codes(self, buf, at):
        s = c = 0
        if self.get_state is not None:
            st = self.get_state()
            s = _code(STATES, st[0])
            c = _code(CAUSES, st[1])
        buf[at] = s
        buf[at + 1] = c

    def poll(self):
        self._receive()
        self._supervise()
        if self._cand is not None and not self.pairing and \
                self.clock.ticks_diff(self.clock.ticks_ms(), self._pair_until) > 0:
            self._rare("failed", "no_confirm")  # the detector never used the key: keep the old one

    def _heartbeat(self):
        ctr = self._next(True)
        if ctr:
            buf = self._fs
            self._codes(buf, 10)
            buf[12] = (1 if self.link == "up" else 0) | (2 if self.pairing or self._cand else 0)
            self._tx(buf, 0x81, ctr)

    def _body(self, ftype):
        return 1 if ftype == 0x01 else 5 if ftype == 0x02 else -1

    def _handle(self, ftype, data):
        if ftype == 0x02:  # CLOSE: close_id, request
            close_id = struct.unpack_from("<I", data, 10)[0]
            if close_id > self.done_close_id:
                self.done_close_id = close_id
                self.closes_executed += 1
                if self.on_close is not None:
                    self.on_close(name_of(REQUESTS, data[14]))
            self._ack(close_id)
        elif data[10] & 2 and self.pairing:
            self._peer_pairing = True  # said under the current key: the detector is pairing
        # HEARTBEAT: freshness already recorded; our STATUS goes out on our own schedule.

    def _ack(self, close_id):
        ctr = self._next()
        if ctr:
            buf = self._fa
            struct.pack_into("<I", buf, 10, close_id)
            self._codes(buf, 14)
            self.acks_sent += 1
            self._tx(buf, 0x82, ctr)

    def valve_closed(self):
        """The controller saw the switch close: acknowledge the last close request at once
        (not only on its next retry). Harmless when it was acknowledged already."""
        if self.key is not None and self.done_close_id and self.synced:
            self._ack(self.done_close_id)

    def _pending_frame(self, mac, data):
        """A frame under the key offered to the one detector answered in a pairing window
        (docs/security.md): its first authentic frame commits the pairing."""
        c = self._cand
        if c is None or self.pairing or bytes(mac) != c[0]:
            return False
        return bool(self._rare("pending", mac, data))

    def status(self):
        # here, not in link_core: the detector shows only its link's state and fault
        # (app._status), so these counters' code is not resident on the detectors
        c = self.counter
        return {
            "link": self.link,
            "paired": self.key is not None,
            "pairing": self.pairing,
            "sent": self.sent,
            "send_failures": self.send_failures,
            "accepted": self.accepted,
            "rejected": self.rejected_total(),
            "rejected_by_reason": dict(self.rejected),
            "counter_writes": c.writes if c else 0,
            "store_errors": c.store_errors if c else 0,
            "closes_executed": self.closes_executed,
            "acks_sent": self.acks_sent,
        }
