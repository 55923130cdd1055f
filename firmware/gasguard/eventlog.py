"""The device event log: a persisted, framed log of every event, written in the loop turn.

Every event the application emits ({"event": kind, ...}) is stamped here with a
sequence number, the boot number and `t` (seconds since power-on) and persisted as one
gasguard.record frame (JSON payload). Nothing of an event outlives the loop turn in RAM:
a ring of event dicts, filled at random moments of the day, pinned holes all over the
heap (docs/heap-budget.md, fragmentation); recent() reads the newest records back from
the end of the file (the service console, STATUS?).

Once the device loop runs, add() never touches flash: it runs inside emit() on the alarm
path. It keeps the event's JSON text in a short pending list, which flush() writes: the
device calls it in its loop turn right after the safety path (DeviceApp.poll) and before
a reboot. Until the first flush() (the boot: refusals, the boot event) add() writes at
once, as no alarm path runs yet. recent() and persisted() include what is pending.

The persisted log survives reboots and power cuts: at boot it is scanned up to the first
torn record and a torn tail is cut off. Flash use stays bounded without ever reading the
whole log on the alarm path: when the current file would grow past max_bytes / 2 it is
renamed over the previous one (`<name>.1`, an atomic rename) and a new file begins, so
the two together hold at most max_bytes and at least the newest max_bytes / 2.

A failing store (flash full, brown-out, no heap) never propagates to the caller: the
alarm path that emitted the event must keep running. Failures are counted in
`write_errors` (the event still reached the device's sinks: the platform, the link).
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
        self._ram = ram  # events pending at most (more: written at once) and kept without a store
        self._pending = []  # JSON text of events not yet on flash (or, without a store, the newest)
        self._defer = False  # set by the loop's first flush(): from then on add() only keeps
        self.seq = 0
        self.write_errors = 0
        self.dropped_torn = 0
        self._load()

    def _load(self):
        if self.store is None:
            return
        buf = self.store.read(self.name)
        payloads, good = record.scan(buf)
        if buf is not None and good < len(buf):
            self.dropped_torn = len(buf) - good
            try:
                self.store.write(self.name, bytes(buf[:good]))
            except OSError:
                self.write_errors += 1
        buf = None
        n = len(payloads)
        last = payloads[-1] if payloads else None
        payloads = None
        if last is None:
            prev = self._tail(self.name + ".1", 1)
            last = prev[-1] if prev else None
        if last is not None:
            ev = _event(last)
            seq = ev.get("seq") if ev is not None else None
            if isinstance(seq, int) and 0 <= seq < 1 << 30:
                self.seq = seq + 1
            else:  # a record this firmware did not write: count on from the log length
                self.seq = n

    def add(self, ev, t):
        """Stamp (seq, boot, t seconds) and keep one event for flush(); returns the
        stamped dict. Once the loop runs, the flash write is the loop turn's."""
        ev = dict(ev)
        ev["seq"] = self.seq
        ev["boot"] = self.boot
        ev["t"] = t
        self.seq += 1
        try:
            raw = json.dumps(ev).encode()
        except MemoryError:
            self.write_errors += 1  # neither kept nor written; the caller still has it
            return ev
        p = self._pending
        if self.store is None:
            if len(p) >= self._ram:
                p.pop(0)
            p.append(raw)
            return ev
        if len(p) >= self._ram:
            self._write()  # many events in one turn: no unbounded queue
            p = self._pending
        p.append(raw)
        if not self._defer:
            self._write()
        return ev

    def flush(self):
        """Write the pending events, oldest first: the loop turn calls this (and from its
        first call on, add() leaves the writing to it)."""
        self._defer = True
        self._write()

    def _write(self):
        p = self._pending
        if not p or self.store is None:
            return
        # drained in place: the loop turn calls this under a full heap too, where even a new
        # empty list is an allocation that fails (and would escape the loop turn)
        while p:
            raw = p.pop(0)
            try:
                frame = record.seal(raw, _VERSION)
                size = self.store.size(self.name)
                if size and size + len(frame) > self.max_bytes // 2:
                    # atomic: a power cut leaves the old or the new pair of files
                    self.store.rename(self.name, self.name + ".1")
                self.store.append(self.name, frame)
            except Exception:  # noqa: BLE001
                # flash full or failing (OSError), no heap for a frame (MemoryError: under a
                # full heap every exception is one, and an `except (A, B)` tuple would be an
                # allocation that fails), a record error: counted; the alarm path goes on
                # (the event reached the sinks)
                self.write_errors += 1

    def _tail(self, name, n):
        """The newest (up to) n intact records of one file, read from its end 512 B at a
        time (never the whole file in one heap block; STATUS? and the status message read
        it late in a day, in a heap whose holes are small: docs/heap-budget.md)."""
        end = self.store.size(name)
        out = []
        k = 512
        while end and len(out) < n:
            s = max(0, end - k)
            got, i = _records(self.store.read_at(name, s, end - s))
            if not got:
                if not s:
                    break
                k *= 2  # one record longer than the window
                continue
            out = got + out
            end = s + i
        return out[-n:]

    def recent(self, n):
        """The newest n events, oldest first (the end of the log, and what is pending)."""
        p = self._pending
        raw = p[-n:] if n > 0 else []
        if self.store is not None and len(raw) < n:
            k = n - len(raw)
            older = self._tail(self.name, k)
            if len(older) < k:
                older = self._tail(self.name + ".1", k - len(older)) + older
            raw = older + raw
        out = []
        for r in raw:
            ev = _event(r)
            if ev is not None:
                out.append(ev)
        return out

    def persisted(self):
        """Every event still in the persisted log, oldest first (reads flash)."""
        self._write()
        out = []
        for name in (self.name + ".1", self.name):
            payloads, _ = record.scan(self.store.read(name))
            for p in payloads:
                ev = _event(p)
                if ev is not None:
                    out.append(ev)
            payloads = None
        return out


def _records(buf):
    """(payloads, offset): the intact records that run from offset to the end of buf, a
    window at the end of a log. Found from the first position from which intact records
    follow to the end (each carries a CRC), so a record cut off by the window's start
    (or torn by a failed write) is skipped."""
    mv = memoryview(buf)
    for i in range(len(buf)):
        if buf[i] == record.MAGIC:
            got, good = record.scan(mv[i:])
            if got and i + good == len(buf):
                return got, i
    return [], len(buf)


def _event(payload):
    """The event dict in a log record, or None for one this firmware cannot read (not
    JSON, not an object: a foreign or future record is skipped, never a crash)."""
    try:
        ev = json.loads(payload)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None
