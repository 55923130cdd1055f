"""The device event log: a RAM ring of recent events plus a persisted, framed log.

Every event the application emits ({"event": kind, ...}) is stamped here with a
sequence number, the boot number and `t` (seconds since power-on), kept in a small RAM
ring for the service console and appended to the store as one gasguard.record frame
(JSON payload). The persisted log survives reboots and power cuts: at boot it is
scanned up to the first torn record, a torn tail is cut off, and the ring is refilled
from its newest entries. When the file grows past `max_bytes` it is rewritten with its
newest half (an atomic store.write), so flash use stays bounded.

A failing store (flash full, brown-out, no heap for a compaction) never propagates to
the caller: the alarm path that emitted the event must keep running. Failures are counted in `write_errors`.
"""

import json

from gasguard import record

LOG_NAME = "events.log"
_VERSION = 1


class EventLog:
    def __init__(self, store, boot=0, ram=32, max_bytes=16384, name=LOG_NAME):
        if ram < 1 or max_bytes < 512:
            raise ValueError("eventlog: ram >= 1 and max_bytes >= 512")
        self.store = store
        self.boot = boot
        self.name = name
        self.max_bytes = max_bytes
        self._ring = [None] * ram
        self._head = 0  # next slot
        self._count = 0
        self.seq = 0
        self.write_errors = 0
        self.dropped_torn = 0
        self._load()

    def _load(self):
        buf = self.store.read(self.name) if self.store is not None else None
        payloads, good = record.scan(buf)
        if buf is not None and good < len(buf):
            self.dropped_torn = len(buf) - good
            try:
                self.store.write(self.name, bytes(buf[:good]))
            except OSError:
                self.write_errors += 1
        keep = payloads[-len(self._ring) :]
        for p in keep:
            ev = _event(p)
            if ev is not None:
                self._push(ev)
        if payloads:
            ev = _event(payloads[-1])
            seq = ev.get("seq") if ev is not None else None
            if isinstance(seq, int) and 0 <= seq < 1 << 30:
                self.seq = seq + 1
            else:  # a record this firmware did not write: count on from the log length
                self.seq = len(payloads)

    def _push(self, ev):
        self._ring[self._head] = ev
        self._head = (self._head + 1) % len(self._ring)
        if self._count < len(self._ring):
            self._count += 1

    def add(self, ev, t):
        """Stamp (seq, boot, t seconds) and store one event; returns the stamped dict."""
        ev = dict(ev)
        ev["seq"] = self.seq
        ev["boot"] = self.boot
        ev["t"] = t
        self.seq += 1
        self._push(ev)
        if self.store is not None:
            try:
                frame = record.seal(json.dumps(ev).encode(), _VERSION)
                if self.store.size(self.name) + len(frame) > self.max_bytes:
                    self._compact()
                self.store.append(self.name, frame)
            except (OSError, MemoryError, record.RecordError):
                # MemoryError: a compaction reads the whole file (up to max_bytes in one
                # block); a fragmented heap must not stop the alarm path that emitted this
                # (found by the soak, docs/soak.md): the event stays in the RAM ring
                self.write_errors += 1
        return ev

    def _compact(self):
        buf = self.store.read(self.name)
        payloads, _ = record.scan(buf)
        keep = payloads[len(payloads) // 2 :]
        out = bytearray()
        for p in keep:
            out.extend(record.seal(p, _VERSION))
        self.store.write(self.name, bytes(out))

    def recent(self, n):
        """The newest n events, oldest first (from RAM: no flash read)."""
        n = min(n, self._count)
        out = []
        size = len(self._ring)
        for i in range(n):
            out.append(self._ring[(self._head - n + i) % size])
        return out

    def persisted(self):
        """Every event still in the persisted log, oldest first (reads flash)."""
        payloads, _ = record.scan(self.store.read(self.name))
        out = []
        for p in payloads:
            ev = _event(p)
            if ev is not None:
                out.append(ev)
        return out


def _event(payload):
    """The event dict in a log record, or None for one this firmware cannot read (not
    JSON, not an object: a foreign or future record is skipped, never a crash)."""
    try:
        ev = json.loads(payload)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None
