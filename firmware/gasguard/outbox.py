"""Bounded, power-safe outbox for messages that must reach the platform (events).

On flash it is one append-only log of gasguard.record frames (magic, version, length,
payload, CRC-32) in the store file "outbox":
    M-record  b"M" | boot u32 | seq u32 | kind u8 | prio u8 | message bytes
    A-record  b"A" | boot u32 | seq u32          (PUBACK received: the M-record is done)
    L-record  b"L" | lost_safety u32 | dropped u32 (losses not yet acknowledged by the
              platform; the last one in the log counts, every rewrite starts with it)
A power cut at any byte leaves a valid prefix plus at most one torn record; opening it
(gasguard.report_cfg.outbox_open, boot-only) keeps the prefix and atomically rewrites the
file without the torn tail (otherwise later appends would sit behind garbage and be lost).
Compaction (dropping acked records) is an atomic rewrite (built in "<name>.new", then
renamed over the log), so a cut during compaction leaves the old log, which still reads
correctly.

RAM holds only an index of the live messages (boot, seq, kind, prio, the M-record's
offset in the log, its length: about 50 bytes each); message() reads one back from the
log when it is sent (a store read at that offset, checked against the index), so a broker
outage does not fill the heap with messages that are on flash anyway (docs/heap-budget.md,
"The outbox on flash only"). Capacity policy (docs/protocol.md, "Outbox"):
  * a non-safety message (prio 1) may use max_bytes; when that is full the oldest
    non-safety message is dropped (counter dropped), and if none is left the new one
    is refused (counter dropped, append returns False);
  * a safety message (prio 0: alarm, fault, valve, interlock, relay) may also use
    reserve_bytes; when even that is full, non-safety messages go first, then the oldest
    safety message *after the first one* (the first detection is kept) is dropped and
    counted in lost_safety, which the state message reports: never silently.
If the store refuses a write (flash error), the message is kept in RAM instead (its index
entry holds the bytes) and delivered, store_errors counts it (reported as a quality flag),
and the next append or ack rewrites the log (which puts it on flash, behind no torn tail).
A rewrite is built record by record in "<name>.new" (records copied from the old log, never
the whole log in one heap block) and renamed over the log (atomic).
Losses (unacked_lost, unacked_dropped) survive reboots: a drop for space is written in
the same atomic rewrite as the message that caused it, so the counter and the log
agree after a power cut; ack_losses() (the platform's signed ack_losses command)
subtracts what the platform has seen.
"""

import struct

from gasguard import record


def _rec(tag, fmt, *v):
    """One record: tag byte, the packed fields (and, for "M", the message as last value)."""
    if tag == b"M":
        return record.seal(tag + struct.pack(fmt, *v[:4]) + v[4], 1)
    return record.seal(tag + struct.pack(fmt, *v), 1)


class Outbox:
    def __init__(self, store, name="outbox", max_bytes=8192, reserve_bytes=2048):
        if max_bytes < 256 or reserve_bytes < 0:
            raise ValueError("outbox: max_bytes >= 256 and reserve_bytes >= 0")
        self.store = store
        self.name = name
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes
        # [boot, seq, kind, prio, where, rec_len], oldest first; where: the M-record's offset
        # in the log (int), or the message bytes while the store could not take them
        self.entries = []
        self.live_bytes = self.file_bytes = self.repaired = self.store_errors = 0
        self.dropped = 0  # non-safety messages dropped for space
        self._torn = False  # an append failed: the log may end in a torn record
        self.lost_safety = 0  # safety messages dropped (outbox full of safety messages)
        self.unacked_lost = 0  # safety messages lost, not yet acknowledged (persisted)
        self.unacked_dropped = 0  # other messages dropped, not yet acknowledged (persisted)
        from gasguard.report_cfg import outbox_open  # boot-only: released before the loop

        outbox_open(self)

    def _loss(self):
        return _rec(b"L", "<II", self.unacked_lost, self.unacked_dropped)

    def _rewrite(self, rec=None):
        """Replace the log by the loss counters and the live messages (atomic). rec: the
        sealed record of the newest entry, not on flash yet. Built record by record in
        <name>.new (a copy of each record read from the old log), then renamed over it."""
        st = self.store
        tmp = self.name + ".new"
        es = self.entries
        try:
            head = self._loss() if self.unacked_lost or self.unacked_dropped else b""
            st.write(tmp, head)
            n = len(es)
            for i in range(n):
                e = es[i]
                w = e[4]
                if rec is not None and i == n - 1:
                    r = rec
                elif isinstance(w, int):
                    r = self.message(e, True)
                    if r is None:
                        raise OSError(5)  # the log does not hold what the index says
                else:
                    r = _rec(b"M", "<IIBB", *e[:5])
                st.append(tmp, r)
                r = None
            st.rename(tmp, self.name)
        except MemoryError:  # alone: a full heap cannot build an `except (A, B)` tuple
            self.store_errors += 1  # the old log stays, complete
            return False
        except OSError:
            self.store_errors += 1
            return False
        pos = len(head)
        for e in es:  # every record has the length the index holds
            e[4] = pos
            pos += e[5]
        self.file_bytes = pos
        self._torn = False
        return True

    def message(self, e, whole=False):
        """The message bytes of entry e (an item of entries): read from the log at send
        time (a memoryview into one read of its record; whole: the record), or the bytes
        RAM holds. None when it cannot be had (counted in store_errors): a read that fails
        (flash error, no heap for it now) leaves the entry to be tried again; a log that
        does not hold at the entry's offset the record the index says will never give it,
        so the entry is dropped and counted as a loss (lost_safety or dropped, persisted,
        reported until acknowledged), never left to block every message behind it.
        whole (the rewrite's read) never drops. The record's CRC was checked when the log
        was loaded; the header check here catches an index that no longer matches."""
        w = e[4]
        if not isinstance(w, int):
            return w
        n = e[5]
        try:
            r = self.store.read_at(self.name, w, n)
        except Exception:  # OSError or MemoryError; one class: a full heap builds no tuple
            r = None
        if r is not None and len(r) == n and r[4] == 0x4D and struct.unpack_from("<II", r, 5) == (e[0], e[1]):
            return r if whole else memoryview(r)[15 : n - 4]
        self.store_errors += 1
        if r is not None and not whole:
            self.entries.remove(e)
            self.live_bytes -= n
            self._count(e[3])
            self._torn = True  # the next write rewrites the log without it
            self._append(self._loss())
        return None

    def _count(self, prio):
        """One message lost: a safety one (prio 0) or another; persisted by the caller."""
        if prio:
            self.dropped += 1
            self.unacked_dropped += 1
        else:
            self.lost_safety += 1
            self.unacked_lost += 1

    def append(self, boot, seq, kind, prio, msg):
        """Persist one message. Return True if kept, False if refused (counted in dropped)."""
        rec = _rec(b"M", "<IIBB", boot, seq, kind, prio, msg)
        need = len(rec)
        if need > self.max_bytes:
            raise ValueError("message of %d bytes does not fit the outbox" % need)
        es = self.entries
        # make room for need bytes at priority prio: a non-safety message never displaces
        # a safety one, and is refused without dropping anything when the safety messages
        # alone leave no room for it
        cap = self.max_bytes
        if prio:
            safety = 0
            for e in es:
                if e[3] == 0:
                    safety += e[5]
            if safety + need > cap:
                self._count(prio)
                self._append(self._loss())
                return False
        else:
            cap += self.reserve_bytes
        removed = False
        while self.live_bytes + need > cap:
            victim = -1
            for i in range(len(es)):
                if es[i][3]:
                    victim = i
                    break
            if victim < 0:
                # full of safety messages: keep the first detection while we can
                victim = 1 if len(es) > 1 else 0
            v = es.pop(victim)
            self._count(v[3])
            self.live_bytes -= v[5]
            removed = True
        e = [boot, seq, kind, prio, msg, need]
        es.append(e)
        self.live_bytes += need
        # drops acked/dropped records, counts the drop; atomic. If it cannot be done the
        # message is appended to the old log: on flash either way (RAM keeps it only if
        # the store refuses that too)
        if (removed or self._torn or self._full(need)) and self._rewrite(rec):
            return True
        at = self.file_bytes
        if self._append(rec):
            e[4] = at
        return True

    def _full(self, more):
        limit = self.max_bytes + self.reserve_bytes
        return self.file_bytes + more > limit + (limit >> 1)

    def _append(self, rec):
        try:
            self.store.append(self.name, rec)
            self.file_bytes += len(rec)
            return True
        except OSError:
            self.store_errors += 1
            # part of it may be there: later offsets count from what the log holds, and
            # the next append or ack rewrites the log without the torn record
            self._torn = True
            try:
                self.file_bytes = self.store.size(self.name)
            except OSError:
                pass
            return False

    def ack_losses(self, lost_safety, dropped_events):
        """The platform has seen these losses: subtract them (never below 0), persisted."""
        self.unacked_lost -= min(lost_safety, self.unacked_lost)
        self.unacked_dropped -= min(dropped_events, self.unacked_dropped)
        self._append(self._loss())

    def ack(self, boot, seq):
        """The platform's broker has it (PUBACK): forget the message. Return True if found."""
        es = self.entries
        for i in range(len(es)):
            if es[i][0] == boot and es[i][1] == seq:
                self.live_bytes -= es.pop(i)[5]
                break
        else:
            return False
        # nothing live: a file with only the loss counters (often empty) is the cheapest
        # compaction (atomic replace); below 1 KB an A-record append costs less flash than a
        # rewrite (17 bytes: an A-record on flash)
        if (not es and self.file_bytes >= 1024) or self._torn or self._full(17):
            self._rewrite()
        else:
            self._append(_rec(b"A", "<II", boot, seq))
        return True

    def __len__(self):
        return len(self.entries)

    def keys(self):
        return [(e[0], e[1]) for e in self.entries]
