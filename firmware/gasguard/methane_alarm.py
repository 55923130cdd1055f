"""One methane alarm level: threshold with hysteresis, confirmation delay, clear delay.

Integer step machine (no allocation, values < 2**30):

- While OFF it compares the reading with the set point `on_x10` (ppm x 10). A
  confirmation counter counts up by dt while the reading is at or above the set
  point and down by dt (not below 0) while it is below; the alarm turns ON when the
  counter reaches `delay_ms`. The alarm therefore never fires before the gas has
  been above the set point for `delay_ms` in total (2026 GB 15322.1/.2: >= 15 s),
  and a brief plume (cooking fumes) decays away instead of adding up forever.
- While ON it compares with the release point `off_x10` = set point - hysteresis.
  The alarm turns OFF once the reading has stayed below the release point for
  `clear_ms` continuously (any sample at/above it restarts the clear timer).

Readings inside the band [off_x10, on_x10) never change the state: the counter
only falls while OFF, and the clear timer restarts on every sample while ON.
"""


class MethaneLevel:
    def __init__(self, level, on_x10, off_x10, delay_ms, clear_ms):
        if not (0 < off_x10 < on_x10 < (1 << 29)):
            raise ValueError("methane level: need 0 < off < on < 2**29")
        if not (0 <= delay_ms <= 600000 and 0 <= clear_ms <= 600000):
            raise ValueError("methane level: delays must be 0..600000 ms")
        self.level = level
        self.on_x10 = on_x10
        self.off_x10 = off_x10
        self.delay_ms = delay_ms
        self.clear_ms = clear_ms
        self.active = False
        self.pending_ms = 0  # confirmation counter while OFF
        self.below_ms = 0  # time continuously below the release point while ON
        self.prev_above = False  # previous sample was at/above the compared threshold

    def update(self, x10, dt_ms):
        """Feed one reading (ppm x 10) held for dt_ms; return True if the state changed."""
        if dt_ms < 0:
            dt_ms = 0
        if not self.active:
            if x10 >= self.on_x10:
                # time counts from the first sample seen above, never before it
                p = self.pending_ms + (dt_ms if self.prev_above else 0)
                self.prev_above = True
                if p >= self.delay_ms:
                    self.active = True
                    self.pending_ms = 0
                    self.below_ms = 0
                    self.prev_above = True
                    return True
                self.pending_ms = p
            else:
                self.prev_above = False
                p = self.pending_ms - dt_ms
                self.pending_ms = p if p > 0 else 0
            return False
        if x10 < self.off_x10:
            b = self.below_ms + (0 if self.prev_above else dt_ms)
            self.prev_above = False
            if b >= self.clear_ms:
                self.active = False
                self.below_ms = 0
                self.pending_ms = 0
                return True
            self.below_ms = b
        else:
            self.prev_above = True
            self.below_ms = 0
        return False


class MethaneAlarm:
    """Two levels (1 = low, 2 = high) built from the normalised config of profiles.load()."""

    def __init__(self, cfg):
        hyst = cfg["ch4_hyst_x10"]
        delay = cfg["ch4_delay_s"] * 1000
        clear = cfg["ch4_clear_s"] * 1000
        self.low = MethaneLevel(1, cfg["ch4_low_x10"], cfg["ch4_low_x10"] - hyst, delay, clear)
        self.high = MethaneLevel(2, cfg["ch4_high_x10"], cfg["ch4_high_x10"] - hyst, delay, clear)
        self.gross_only = cfg.get("warmup_gross_only", True)
        self.lel = cfg["ch4_pct_lel_x10"]  # 1 %LEL in ppm x 10

    def update(self, x10, dt_ms, warming_up=False):
        """Return a bit mask of changed levels (1: low changed, 2: high changed)."""
        lo_in = x10
        if warming_up and self.gross_only and x10 < self.high.on_x10 and not self.low.active:
            # During heater warm-up a MOS sensor's low readings are not trustworthy;
            # only a gross leak (at or above the high set point) may alarm (GB 15322.2 3.3.7).
            lo_in = 0
        ch = 0
        if self.low.update(lo_in, dt_ms):
            ch |= 1
        if self.high.update(x10, dt_ms):
            ch |= 2
        return ch

    def level(self):
        if self.high.active:
            return 2
        if self.low.active:
            return 1
        return 0

    def state(self):
        """The active levels as bits (1: low, 2: high)."""
        return (1 if self.low.active else 0) | (2 if self.high.active else 0)

    def info(self, d):
        """Add the methane figures to a gas path's status dict."""
        d["pct_lel_x10"] = (d["ppm_x10"] * 10) // self.lel
        d["pending_ms"] = self.low.pending_ms
