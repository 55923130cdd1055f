"""The protocol core shared by both ends of the interlock link (see gasguard.espnow_link).

Resident: authentication, freshness (counter above the last accepted, echo at or above
our boot floor), heartbeats, link supervision, rejected-frame counters, the frame counter,
and the frames each end sends, built in preallocated buffers (docs/interlock.md has the
layout and test vectors; gasguard.interlock_frame is the reference codec they are tested
against). Not resident (docs/heap-budget.md): the construction, config check and key
provisioning (gasguard.interlock_keys), and pairing (gasguard.link_pair), which only runs while a person
holds a pairing window open; _rare() loads it for the call and releases it afterwards.
"""

import struct

from gasguard import hmac256, lazy, record

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_TAG = const(16)
_MIN = const(26)  # header (10) + tag
_MAXC = const(0x3FFFFFFF)  # counters stay small ints on the ESP32

REJECT_REASONS = (
    "malformed",  # too short/long, wrong length for its type, counter 0
    "version",  # another protocol version
    "foreign",  # from a MAC we are not paired with
    "bad_tag",  # HMAC does not match: forged, corrupted or another pair's key
    "unsupported",  # authentic but asks for something this end cannot do (no OPEN exists)
    "replay",  # counter not above the last accepted one
    "stale",  # authentic, but its echo predates our boot/pairing (possibly a recording)
    "unpaired",  # no key yet
    "pairing_closed",  # pairing frame outside a pairing window
)
# Valve states and close causes on the air (index = code), as interlock_frame has them.
STATES = ("unknown", "open", "closed", "closing", "fault")
CAUSES = ("none", "interlock", "over_pressure", "under_pressure", "over_flow", "manual", "link_lost", "unknown")


# Built once: a tuple written in place (isinstance, except) is made at each use, and that
# allocation can fail when the heap is full.
_BYTES = (bytes, bytearray, memoryview)
_STORE_ERRORS = (OSError, MemoryError)


def name_of(table, code):
    return table[code] if code < len(table) else table[0]


class FrameCounter:
    """Our frame counter for one key, persisted in blocks so flash writes stay rare.

    At construction the stored reservation R is read; counting resumes at R (every
    value below R may have been used before the reboot) and R + block is written
    before the first frame goes out. Then one write per `block` frames.
    """

    def __init__(self, store, key, block):
        from gasguard import interlock_keys  # boot and pairing only: parked

        interlock_keys.counter_start(self, store, key, block)

    def _reserve(self):
        new = self.next_value + self.block
        if new > _MAXC + 1:
            new = _MAXC + 1
        try:
            self.store.write("ilk_ctr", record.seal(self.fp + struct.pack("<I", new), 1))
            self.writes += 1
        except _STORE_ERRORS:  # counted; the block is used all the same (after a reboot
            self.store_errors += 1  # the peer rejects a reused value as a replay)
        self.reserved = new

    def take(self):
        v = self.next_value
        if v > _MAXC:
            return 0
        if v >= self.reserved:
            self._reserve()
        self.next_value = v + 1
        return v


class LinkCore:
    """Protocol core shared by both ends. Subclasses set ROLE, ACCEPT, SPARE, _body() and
    _handle(). SPARE: bytes held for the moment a frame's tag or a counter reservation finds
    the heap full (see _mac): the tags one call of that end may need."""

    ROLE = "?"
    ACCEPT = ()

    def __init__(self, radio, clock, store, cfg=None, emit=None, rand=None):
        from gasguard import interlock_keys  # the construction is boot-only code

        try:
            interlock_keys.setup(self, radio, clock, store, cfg, emit, rand, REJECT_REASONS)
        finally:
            interlock_keys = None
            lazy.release("interlock_keys", "link_cfg")

    # --- keys and freshness -------------------------------------------------
    def _install(self, key, peer):
        """Use a shared key: at boot and at the end of a pairing, both parked contexts."""
        from gasguard import interlock_keys

        interlock_keys.install(self, key, peer, FrameCounter)

    def provision(self, key, peer_mac):
        """Factory provisioning on a running device: store and use a shared key."""
        self._rare("provision", key, peer_mac)

    def pair_button(self, force=False, *args):
        """The pairing button was pressed: open a pairing window (docs/security.md).

        The window hears offers for its whole length; exactly one peer may offer, a second
        aborts it. A pairing whose link is up is replaced only if its peer says, under the
        current key, that it is pairing too, or with force (physical presence: factory mode).
        args: (app,), the device whose LEDs and buzzer tell the person if the window fails
        (gasguard.pair_note; "args", a name this module has already: no new table entry).
        """
        if not self.pairing:  # one window, one nonce: a second press must not look like a second peer
            self._rare("button", force, *args)

    def _rare(self, name, *args):
        """link_pair.<name>(self, *args): loaded for the call, kept while a pairing is open."""
        try:
            from gasguard import link_pair

            return getattr(link_pair, name)(self, *args)
        except MemoryError:
            if name == "provision":
                raise
            self.pairing = False  # no room to pair now: say so, the link goes on as it was
            self._cand = None
            try:
                self.emit({"event": "link", "state": "pair_failed", "reason": "no_memory"})
            except MemoryError:
                pass
        finally:
            link_pair = None
            if not self.pairing and self._cand is None:
                lazy.release("link_pair", "x25519", "interlock_frame", "interlock_keys", "link_cfg")

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

    def _mac(self, buf, n):
        """The HMAC of buf[:n] under our key. When even its hash objects find no room (a
        close at the moment the heap is full), the spare is given up for them: for a CLOSE
        (0x02) or its ACK (0x82) only, the frame type at buf[1]. A heartbeat (0x01, 0x81) is
        retried later; under a heap that stays full it would use up the spare the close
        needs (host_tests/heap/test_alarm_full_heap.py)."""
        try:
            return hmac256.mac(self._p, memoryview(buf)[:n])
        except MemoryError:
            if buf[1] & 0x7F != 2:
                raise
            self._spare = None
            return hmac256.mac(self._p, memoryview(buf)[:n])

    def _tx(self, buf, ftype, ctr):
        """Send a preallocated frame whose body is filled in: header (our counter and echo)
        and tag written in place, so a frame allocates only its tag's hash objects."""
        struct.pack_into("<BBII", buf, 0, 1, ftype, ctr, self.seen)
        n = len(buf) - _TAG
        d = self._mac(buf, n)
        for i in range(_TAG):
            buf[n + i] = d[i]
        return self._send(self.peer, buf)

    def _next(self, ahead=False):
        """Our next counter value. ahead (a heartbeat): reserve the next block already while
        block/16 values are left, so a close almost never waits for the flash write (and
        never for its room: under a full heap the spare goes to the close's tag, a
        reservation due in the close fails and is counted as a store error)."""
        c = self.counter
        if ahead and c.reserved - c.next_value <= c.block >> 4:
            c._reserve()
        return c.take()

    def _receive_one(self, mac, data):
        """Authenticate and check freshness; call _handle() for fresh frames."""
        if not isinstance(data, _BYTES) or not _MIN <= len(data) <= 250:
            self._reject("malformed")
            return
        if data[0] != 1:
            self._reject("version")
            return
        ftype = data[1]
        if ftype == 0x20 or ftype == 0xA0:  # PAIR_REQ, PAIR_RESP
            if not self.pairing:
                self._reject("pairing_closed")
            else:
                self._rare("frame", mac, ftype, data)
            return
        if self.key is None:
            if not self._pending_frame(mac, data):
                self._reject("unpaired")
            return
        if mac != self.peer:  # (bytes-like == bytes compares contents: nothing allocated)
            if self._pending_frame(mac, data):
                return
            self._reject("foreign")
            return
        n = len(data) - _TAG
        d = self._mac(data, n)
        acc = 0
        for i in range(_TAG):
            acc |= d[i] ^ data[n + i]
        if acc:
            if not self._pending_frame(mac, data):
                self._reject("bad_tag")
            return
        blen = self._body(ftype)
        if blen < 0:
            self._reject("unsupported")
            return
        ctr, echo = struct.unpack_from("<II", data, 2)
        if n != 10 + blen or ctr < 1 or ctr > _MAXC:
            self._reject("malformed")
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
        self._handle(ftype, data)

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
        if self._spare is None:  # given up for a frame: taken back on a later poll, not in
            try:  # the turn of the close (the detector's own event may need the room then)
                self._spare = bytearray(self.SPARE)
            except MemoryError:
                pass
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
            self._rare("end")
        n = self.rejected_total()
        if n != self._reported_rejects and self.clock.ticks_diff(now, self._reject_report_at) >= 0:
            self._reject_report_at = self.clock.ticks_add(now, self.cfg["reject_report_ms"])
            try:  # the report's dicts need room: without, it is told at the next report time
                counts = {}
                for r in REJECT_REASONS:
                    if self.rejected[r]:
                        counts[r] = self.rejected[r]
                self.emit({"event": "link", "state": "rejected", "total": n, "counts": counts})
                self._reported_rejects = n
            except MemoryError:
                pass
