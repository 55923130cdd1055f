"""Indicator LEDs, buzzer and relay: non-blocking pattern engine.

Each output is a pin driven by a pattern: a tuple of durations in ms, alternating
on, off, on, off ... and repeating; `OFF` and `ON` are steady. `poll()` advances the
patterns from the clock (ticks_diff, wrap safe) and writes a pin only when its level
changes. Patterns are module constants, so switching them allocates nothing.

Indications (GB 15322.1-2019 §4.3.1.3: separate normal=green, fault=yellow,
alarm=red; low and high alarm distinguishable):

  state                    green        yellow     red              buzzer
  normal                   steady       off        off              off
  warm-up                  slow blink   -          -                off
  fault (any)              off          steady     -                chirp every fault_chirp_s
  methane low (level 1)    off          -          1 Hz blink       0.5 s on / 0.5 s off
  methane high (level 2)   off          -          steady           fast 0.2 / 0.2 (not hushable)
  CO alarm                 off          -          double flash     4 x 0.1 s beeps, 5 s pause (T4)
  self-test                all LEDs and the buzzer in a fixed sequence
"""

OFF = ()
ON = (-1,)
SLOW_BLINK = (1000, 1000)
BLINK_1HZ = (500, 500)
DOUBLE_FLASH = (150, 150, 150, 1550)
BEEP_L1 = BLINK_1HZ  # 0.5 s on / 0.5 s off
BEEP_L2 = (200, 200)
BEEP_CO_T4 = (100, 100, 100, 100, 100, 100, 100, 5300)
CHIRP = (100,)  # one 100 ms chirp; the period is set by the caller (see Outputs.chirp)


class PatternPin:
    """One output pin following a pattern."""

    def __init__(self, pin, clock):
        self.pin = pin
        self.clock = clock
        self.pattern = OFF
        self.idx = 0
        self.since = 0
        self.level = 0
        self.period_off = 0  # extra off time appended to one-shot patterns (chirps)
        if pin is not None:
            pin.value(0)

    def set(self, pattern, off_ms=0):
        if pattern is self.pattern and off_ms == self.period_off:
            return
        self.pattern = pattern
        self.period_off = off_ms
        self.idx = 0
        self.since = self.clock.ticks_ms()
        self._write(1 if pattern else 0)

    def _write(self, level):
        if level != self.level:
            self.level = level
            if self.pin is not None:
                self.pin.value(level)

    def poll(self, now):
        pat = self.pattern
        n = len(pat)
        if n == 0 or pat[0] < 0:
            return
        el = self.clock.ticks_diff(now, self.since)
        guard = 0
        while guard < 16:
            guard += 1
            if self.idx < n:
                dur = pat[self.idx]
            else:
                dur = self.period_off
            if el < dur:
                break
            el -= dur
            self.since = self.clock.ticks_add(self.since, dur)
            self.idx += 1
            total = n + (1 if self.period_off else 0)
            if self.idx >= total:
                self.idx = 0
        if self.idx < n:
            self._write(1 if (self.idx & 1) == 0 else 0)
        else:
            self._write(0)


class Outputs:
    """The board's indicator outputs: led_green, led_yellow, led_red, buzzer, relay."""

    def __init__(self, board, clock):
        self.clock = clock
        self.green = PatternPin(getattr(board, "led_green", None), clock)
        self.yellow = PatternPin(getattr(board, "led_yellow", None), clock)
        self.red = PatternPin(getattr(board, "led_red", None), clock)
        self.buzzer = PatternPin(getattr(board, "buzzer", None), clock)
        self.relay_pin = getattr(board, "relay", None)
        self.relay_on = False
        # an indication that sets the patterns itself (the failed-pairing note, gasguard.pair_note),
        # else None (the name is one this module has already: no new entry in its name table)
        self.pattern = None
        if self.relay_pin is not None:
            self.relay_pin.value(0)

    def set_relay(self, on):
        on = bool(on)
        if on != self.relay_on:
            self.relay_on = on
            if self.relay_pin is not None:
                self.relay_pin.value(1 if on else 0)
            return True
        return False

    def show(self, lvl, co, faulted, ready, hushed, chirp_ms):
        """The indications of the table above for one state: methane level `lvl`, CO alarm
        `co`, any fault, warm-up over, hush (silences all but a high methane alarm).
        While a failed-pairing note has the patterns (self.pattern), they stay its own unless
        there is an alarm: the alarm always wins and the note is dropped."""
        alarm = lvl or co
        if self.pattern is not None and not alarm:
            return
        self.pattern = None
        self.red.set(ON if lvl >= 2 else BLINK_1HZ if lvl else DOUBLE_FLASH if co else OFF)
        self.yellow.set(ON if faulted else OFF)
        self.green.set(OFF if alarm or faulted else ON if ready else SLOW_BLINK)
        # buzzer: priority high methane > CO > low methane > fault chirp (one expression:
        # fewer calls, less resident bytecode)
        b = (BEEP_L2 if lvl >= 2 else OFF if hushed else BEEP_CO_T4 if co else BEEP_L1 if lvl
             else CHIRP if faulted else OFF)
        self.buzzer.set(b, chirp_ms if b is CHIRP else 0)

    def poll(self):
        now = self.clock.ticks_ms()
        self.green.poll(now)
        self.yellow.poll(now)
        self.red.poll(now)
        self.buzzer.poll(now)

    def levels(self):
        return (self.green.level, self.yellow.level, self.red.level, self.buzzer.level,
                1 if self.relay_on else 0)
