"""The failed-pairing indication (docs/interlock.md, "When a pairing fails"): parked code.

A pairing window that ends without a pairing (the link event pair_failed: nobody answered,
a second device offered, an offer was forged or refused, no room) is told to the person in
front of the device by a pattern nothing else uses, for NOTE_MS; the reason (the event's
short code, which the host tools expand, tools/gasguard_tools/i18n.py PAIR_REASONS) is in
the event log and, while the pattern shows, in STATUS? (parts.pair_note).

Loaded for the indication only (gasguard.link_pair.failed, for the app whose button opened the window) and released at its end, so
the device's resident heap does not grow. The alarm always wins: a note is not started
while a gas alarm sounds, and Outputs.show() drops it (Outputs.pattern) the moment an alarm is shown (the
note then ends without touching an output); a self-test or a new pairing window ends it.
"""

from gasguard import lazy

NOTE_MS = 12000  # three periods of the buzzer pattern
# detector: the yellow LED flickers twice a second (a fault is steady yellow), red and
# green off; the buzzer sounds long-short-short every 4 s (no alarm or chirp starts long)
FLICKER = (100, 100, 100, 700)
BUZZ = (600, 150, 150, 150, 150, 2800)
OFF = ()


class Note:
    name = "pair_note"

    def __init__(self, app, link, reason):
        self.app = app
        self.link = link
        self.reason = reason
        self.start = app.clock.ticks_ms()
        self.det = det = getattr(app, "detector", None)
        self._lvl = -1
        if det is not None:
            o = det.outputs
            o.pattern = self
            if det._st is None:
                o.red.set(OFF)
                o.green.set(OFF)
                o.yellow.set(FLICKER)
                o.buzzer.set(BUZZ)
        app.pollers.append(self)

    def poll(self):
        el = self.app.clock.ticks_diff(self.app.clock.ticks_ms(), self.start)
        det = self.det
        if det is not None and (det.outputs.pattern is not self or det._st is not None):
            return self.end(False)  # an alarm (Outputs.show) or a self-test has the outputs
        if el >= NOTE_MS or self.link.pairing:
            return self.end(True)
        if det is None:  # the valve: its red LED flickers (its LEDs show nothing else)
            self._led(_level(FLICKER, el))

    def _led(self, lvl):
        if lvl != self._lvl:
            self._lvl = lvl
            pin = getattr(self.app.board, "led_red", None)
            if pin is not None:
                pin.value(lvl)

    def end(self, render):
        try:
            self.app.pollers.remove(self)
        except ValueError:
            pass
        det = self.det
        if det is None:
            self._led(0)
        elif det.outputs.pattern is self:
            det.outputs.pattern = None
            if render and det._st is None:
                det._render()
        lazy.release("pair_note")

    def status(self):
        left = NOTE_MS - self.app.clock.ticks_diff(self.app.clock.ticks_ms(), self.start)
        return {"failed": self.reason, "left_ms": left if left > 0 else 0}


def _level(pat, el):
    """The level a repeating on/off pattern has el ms after it started."""
    n = 0
    for d in pat:
        n += d
    el %= n
    i = 0
    for d in pat:
        if el < d:
            return 1 - (i & 1)
        el -= d
        i += 1
    return 0


def start(app, link, reason):
    """A pairing window of link failed (gasguard.link_pair.failed): show it, one note at a
    time. Never on the alarm path; whatever it raises (a MemoryError) link_pair.failed
    drops: the event alone says why."""
    for p in app.pollers:
        if isinstance(p, Note):
            p.end(False)  # one note at a time: the newest reason
            break
    det = getattr(app, "detector", None)
    if det is not None and det._sounding():
        lazy.release("pair_note")
        return None  # the alarm has the outputs; the event says why
    return Note(app, link, reason)
