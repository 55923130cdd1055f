"""A push button as a debounced step machine: short press and long hold.

    b = Button(pin, clock, on_short, on_hold, debounce_ms=50, hold_ms=3000)
    b.poll()   # every loop turn (10-50 ms); never blocks

`pin.value()` is 1 while pressed (the board inverts an active-low input). A level counts
only after it has been stable for `debounce_ms`. A press fires `on_hold()` once as soon
as it has lasted `hold_ms` (nothing more until release); a press released before that
fires `on_short()` on release. A button already held when the machine starts (held at
power-on: factory mode) fires nothing until it has been released. All timing goes
through `clock.ticks_diff`, so the 2**30 ms wrap of the ticks counter changes nothing.
"""

DEFAULTS = {"debounce_ms": 50, "hold_ms": 3000}


def button_config(cfg):
    from gasguard.validate import need_int, reject_unknown  # boot/CFG-only checks

    cfg = cfg or {}
    reject_unknown(cfg, DEFAULTS, "button")
    return {"debounce_ms": need_int(cfg, "debounce_ms", 5, 500, 50),
            "hold_ms": need_int(cfg, "hold_ms", 1000, 10000, 3000)}


class Button:
    def __init__(self, pin, clock, on_short, on_hold, cfg=None):
        c = button_config(cfg)
        self.pin = pin
        self.clock = clock
        self.on_short = on_short
        self.on_hold = on_hold
        self.debounce_ms = c["debounce_ms"]
        self.hold_ms = c["hold_ms"]
        now = clock.ticks_ms()
        lvl = 1 if pin.value() else 0
        self._cand = lvl
        self._cand_since = now
        self.pressed = lvl  # debounced level
        self._pressed_at = now
        self._done = bool(lvl)  # held at start: ignored until released
        self.shorts = 0
        self.holds = 0

    def poll(self):
        clock = self.clock
        now = clock.ticks_ms()
        lvl = 1 if self.pin.value() else 0
        if lvl != self._cand:
            self._cand = lvl
            self._cand_since = now
        elif lvl != self.pressed and clock.ticks_diff(now, self._cand_since) >= self.debounce_ms:
            self.pressed = lvl
            if lvl:
                self._pressed_at = self._cand_since
                self._done = False
            else:
                fire = not self._done
                self._done = False
                if fire:
                    self.shorts += 1
                    self.on_short()
                return
        # a release not yet debounced (_cand 0) ends the press where it began: a 2960 ms press
        # is a short one, though it is still "pressed" for the debounce after it
        if self._cand and self.pressed and not self._done and clock.ticks_diff(now, self._pressed_at) >= self.hold_ms:
            self._done = True
            self.holds += 1
            self.on_hold()
