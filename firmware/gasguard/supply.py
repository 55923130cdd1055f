"""Supply voltage monitor: a divider onto an ADC pin, low-supply fault with hysteresis.

    sup = SupplyMonitor(adc, clock, cfg)
    sup.sample()       oversample the ADC, update .millivolts and .fault (no allocation)
    sup.millivolts     supply in mV (int)
    sup.fault          None or "supply_low"

The fault comes on after `count` samples in a row below low_mv and goes off after
`count` samples in a row at or above low_mv + hyst_mv, so a supply hovering at the
threshold does not chatter. Defaults (a 5 V rail through a 2:1 divider, fault below
4.50 V, clear at 4.70 V) are [derived] engineering values: see docs/calibration.md.
"""

from gasguard.validate import ConfigError, need_int, need_num, reject_unknown

KEYS = ("divider", "low_mv", "hyst_mv", "count", "oversample")


class SupplyMonitor:
    def __init__(self, adc, clock, cfg=None):
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise ConfigError("supply: expected a dict, got %r" % (cfg,))
        reject_unknown(cfg, KEYS, "supply")
        div = need_num(cfg, "divider", 1.0, 20.0, 2.0)
        self.low_mv = need_int(cfg, "low_mv", 1000, 30000, 4500)
        self.hyst_mv = need_int(cfg, "hyst_mv", 0, 5000, 200)
        self.count = need_int(cfg, "count", 1, 60, 3)
        self.oversample = need_int(cfg, "oversample", 1, 16, 4)
        # mV = µV · div / 1000 = µV · div_q10 / 1024000 ; µV < 2**22 and div_q10 < 2**15:
        # split µV so every product stays below 2**30.
        self.div_q10 = int(div * 1024 + 0.5)
        self.adc = adc
        self.clock = clock
        self.millivolts = 0
        self.fault = None
        self._bad = 0
        self._good = 0

    def _mv(self, uv):
        d = self.div_q10
        hi = uv >> 10
        lo = uv & 1023
        # uv·d/1024 = hi·d + lo·d/1024 (µV at the supply), then /1000
        return (hi * d + ((lo * d) >> 10)) // 1000

    def sample(self):
        s = 0
        i = 0
        n = self.oversample
        while i < n:
            s += self.adc.read_uv()
            i += 1
        mv = self._mv(s // n)
        self.millivolts = mv
        if mv < self.low_mv:
            self._good = 0
            if self._bad < self.count:
                self._bad += 1
            if self._bad >= self.count:
                self.fault = "supply_low"
        else:
            self._bad = 0
            if self.fault is not None and mv >= self.low_mv + self.hyst_mv:
                self._good += 1
                if self._good >= self.count:
                    self._good = 0
                    self.fault = None
            else:
                self._good = 0
        return mv
