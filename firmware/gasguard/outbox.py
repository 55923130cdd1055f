"""Bounded, power-safe outbox for messages that must reach the platform (events).

On flash it is one append-only log of gasguard.record frames (magic, version, length,
payload, CRC-32) in the store file "outbox":
    M-record  b"M" | boot u32 | seq u32 | kind u8 | prio u8 | message bytes
    A-record  b"A" | boot u32 | seq u32          (PUBACK received: the M-record is done)
    L-record  b"L" | lost_safety u32 | dropped u32 (losses not yet acknowledged by the
              platform; the last one in the log counts, every rewrite starts with it)
A power cut at any byte leaves a valid prefix plus at most one torn record; open()
keeps the prefix and atomically rewrites the file without the torn tail (otherwise
later appends would sit behind garbage and be lost). Compaction (dropping acked
records) is an atomic rewrite (store.write = temp file + rename), so a cut during
compaction leaves the old log, which still reads correctly.

RAM holds the live messages (bounded by max_bytes + reserve_bytes) so delivery never
reads flash. Capacity policy (docs/protocol.md, "Outbox"):
  * a non-safety message (prio 1) may use max_bytes; when that is full the oldest
    non-safety message is dropped (counter dropped), and if none is left the new one
    is refused (counter dropped, append returns False);
  * a safety message (prio 0: alarm, fault, valve, interlock, relay) may also use
    reserve_bytes; when even that is full, non-safety messages go first, then the oldest
    safety message *after the first one* (the first detection is kept) is dropped and
    counted in lost_safety, which the state message reports: never silently.
If the store refuses a write (flash error), the message is still kept in RAM and
delivered, and store_errors counts it (reported as a quality flag).
Losses (unacked_lost, unacked_dropped) survive reboots: a drop for space is written in
the same atomic rewrite as the message that caused it, so the counter and the log
agree after a power cut; ack_losses() (the platform's signed ack_losses command)
subtracts what the platform has seen.
"""

import struct

from gasguard import record

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_HEAD = const(11)  # b"M" + <IIBB
_REC_OVERHEAD = const(8)  # record header + CRC
_A_LEN = const(17)  # an A-record on flash
REC_VERSION = const(1)
COMPACT_EMPTY_AT = const(1024)


class Outbox:
    def __init__(self, store, name="outbox", max_bytes=8192, reserve_bytes=2048):
        if max_bytes < 256 or reserve_bytes < 0:
            raise ValueError("outbox: max_bytes >= 256 and reserve_bytes >= 0")
        self.store = store
        self.name = name
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes
        self.entries = []  # [boot, seq, kind, prio, msg_bytes, rec_len], oldest first
        self.live_bytes = 0
        self.file_bytes = 0
        self.dropped = 0  # non-safety messages dropped for space
        self.lost_safety = 0  # safety messages dropped (outbox full of safety messages)
        self.store_errors = 0
        self.repaired = 0  # bytes of torn tail removed at open
        self.unacked_lost = 0  # safety messages lost, not yet acknowledged (persisted)
        self.unacked_dropped = 0  # other messages dropped, not yet acknowledged (persisted)
        self._open()

    # ---- loading ---------------------------------------------------------------------
    def _open(self):
        try:
            data = self.store.read(self.name)
        except OSError:
            data = None
            self.store_errors += 1
        if not data:
            return
        payloads, good = record.scan(data)
        live = []
        for p in payloads:
            if len(p) >= 9 and p[0] == 0x4D:  # "M"
                if len(p) < _HEAD:
                    continue
                boot, seq, kind, prio = struct.unpack_from("<IIBB", p, 1)
                msg = bytes(p[_HEAD:])
                live.append([boot, seq, kind, prio, msg, len(p) + _REC_OVERHEAD])
            elif len(p) == 9 and p[0] == 0x41:  # "A"
                boot, seq = struct.unpack_from("<II", p, 1)
                for i in range(len(live)):
                    if live[i][0] == boot and live[i][1] == seq:
                        live.pop(i)
                        break
            elif len(p) == 9 and p[0] == 0x4C:  # "L"
                self.unacked_lost, self.unacked_dropped = struct.unpack_from("<II", p, 1)
        self.entries = live
        self.live_bytes = 0
        for e in live:
            self.live_bytes += e[5]
        self.file_bytes = good
        if good < len(data):
            self.repaired = len(data) - good
            self._rewrite()

    # ---- writing ---------------------------------------------------------------------
    @staticmethod
    def _m_record(boot, seq, kind, prio, msg):
        return record.seal(b"M" + struct.pack("<IIBB", boot, seq, kind, prio) + msg, REC_VERSION)

    def _l_record(self):
        return record.seal(b"L" + struct.pack("<II", self.unacked_lost, self.unacked_dropped),
                           REC_VERSION)

    def _rewrite(self):
        try:
            parts = [self._l_record()] if self.unacked_lost or self.unacked_dropped else []
            for e in self.entries:
                parts.append(self._m_record(e[0], e[1], e[2], e[3], e[4]))
            data = b"".join(parts)  # up to ~10 KB in one piece: may not fit a tight heap
            parts = None
            self.store.write(self.name, data)
            self.file_bytes = len(data)
            return True
        except (OSError, MemoryError):
            self.store_errors += 1  # the old log stays, complete
            return False

    def _drop_for(self, need, prio):
        """Make room for need bytes at priority prio: (fits, dropped_any). A non-safety
        message never displaces a safety one, and is refused without dropping anything
        when the safety messages alone leave no room for it."""
        if prio != 0:
            safety = 0
            for e in self.entries:
                if e[3] == 0:
                    safety += e[5]
            if safety + need > self.max_bytes:
                return False, False
            cap = self.max_bytes
        else:
            cap = self.max_bytes + self.reserve_bytes
        dropped = False
        while self.live_bytes + need > cap:
            victim = -1
            for i in range(len(self.entries)):
                if self.entries[i][3] != 0:
                    victim = i
                    break
            if victim < 0:
                # full of safety messages: keep the first detection while we can
                victim = 1 if len(self.entries) > 1 else 0
                self.lost_safety += 1
                self.unacked_lost += 1
            else:
                self.dropped += 1
                self.unacked_dropped += 1
            self.live_bytes -= self.entries[victim][5]
            self.entries.pop(victim)
            dropped = True
        return True, dropped

    def append(self, boot, seq, kind, prio, msg):
        """Persist one message. Return True if kept, False if refused (counted in dropped)."""
        rec = self._m_record(boot, seq, kind, prio, msg)
        need = len(rec)
        if need > self.max_bytes:
            raise ValueError("message of %d bytes does not fit the outbox" % need)
        fits, removed = self._drop_for(need, prio)
        if not fits:
            self.dropped += 1
            self.unacked_dropped += 1
            self._append(self._l_record())
            return False
        self.entries.append([boot, seq, kind, prio, msg, need])
        self.live_bytes += need
        limit = self.max_bytes + self.reserve_bytes
        if removed or self.file_bytes + need > limit + (limit >> 1):
            # drops acked/dropped records, counts the drop; atomic. If it cannot be done
            # the message is appended to the old log: on flash either way
            if not self._rewrite():
                self._append(rec)
        else:
            self._append(rec)
        return True

    def _append(self, rec):
        try:
            self.store.append(self.name, rec)
            self.file_bytes += len(rec)
        except OSError:
            self.store_errors += 1

    def ack_losses(self, lost_safety, dropped_events):
        """The platform has seen these losses: subtract them (never below 0), persisted."""
        self.unacked_lost -= min(lost_safety, self.unacked_lost)
        self.unacked_dropped -= min(dropped_events, self.unacked_dropped)
        self._append(self._l_record())

    def ack(self, boot, seq):
        """The platform's broker has it (PUBACK): forget the message. Return True if found."""
        for i in range(len(self.entries)):
            e = self.entries[i]
            if e[0] == boot and e[1] == seq:
                self.entries.pop(i)
                self.live_bytes -= e[5]
                break
        else:
            return False
        limit = self.max_bytes + self.reserve_bytes
        if not self.entries and self.file_bytes >= COMPACT_EMPTY_AT:
            # nothing live: a file with only the loss counters (often empty) is the
            # cheapest compaction (atomic replace); below COMPACT_EMPTY_AT an A-record
            # append costs less flash than a rewrite
            self._rewrite()
        elif self.file_bytes + _A_LEN > limit + (limit >> 1):
            self._rewrite()
        else:
            self._append(record.seal(b"A" + struct.pack("<II", boot, seq), REC_VERSION))
        return True

    def __len__(self):
        return len(self.entries)

    def keys(self):
        return [(e[0], e[1]) for e in self.entries]
