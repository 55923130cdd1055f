"""Differential driver for sensing: the same µV sequence through the same channel on both
interpreters must give the same integers.

Input, one JSON object per line:
  {"setup": {"sensor": {...}, "channel": {...}, "cal": [zero, span_uv, span_ppm_x10] | null,
             "start": ticks_ms, "supply": {...}}}
  {"dt": ms, "uv": [µV, ...], "temp": temp_c_x10 (optional), "rh": pct (optional),
   "age": days (optional), "sup": µV (optional)}
  {"inv": ppm_x10}
Output: one line per step:  ppm_x10 raw_uv filtered_uv fault_bits warming over [supply_mv supply_fault]
        one line per inv:   uv
"""

import json
import sys

from gasguard import calibration, sensors
from gasguard.sensors import Channel, SupplyMonitor
from simboard import SimAnalogIn, SimClock


class Feed:
    def __init__(self):
        self.vals = []
        self.pos = 0

    def __call__(self):
        if not self.vals:
            return 0
        v = self.vals[self.pos % len(self.vals)]
        self.pos += 1
        return v


def main():
    ch = model = clock = feed = sup = sup_feed = None
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        q = json.loads(line)
        if "setup" in q:
            s = q["setup"]
            model = sensors.from_config(s["sensor"])
            cal = None
            c = s.get("cal")
            if c is not None:
                su = c[1] if len(c) > 1 else None
                sp = c[2] if len(c) > 2 else None
                try:
                    cal = calibration.ChannelCal(model.gas, model.name, c[0], su, sp)
                except calibration.CalibrationError:
                    cal = None
            clock = SimClock(s.get("start"))
            feed = Feed()
            ch = Channel(SimAnalogIn(feed, full_scale_uv=3300000), clock, model, cal,
                         s.get("channel") or {})
            sup = None
            if s.get("supply") is not None:
                sup_feed = Feed()
                sup = SupplyMonitor(SimAnalogIn(sup_feed, full_scale_uv=3300000), clock,
                                    s["supply"])
            out.write("setup %d %s\n" % (ch.fault_bits, "-" if ch.cal_problem is None else "cal"))
        elif "inv" in q:
            out.write("%d\n" % model.uv(q["inv"]))
        else:
            clock.advance(q.get("dt", 1000))
            feed.vals = q["uv"]
            feed.pos = 0
            if "temp" in q:
                ch.set_environment(q["temp"], q.get("rh"))
            if "age" in q:
                ch.set_age_days(q["age"])
            ch.sample()
            line = "%d %d %d %d %d %d" % (ch.ppm_x10, ch.raw_uv, ch.filtered_uv, ch.fault_bits,
                                          1 if ch.warming_up else 0, 1 if ch.over_range else 0)
            if sup is not None:
                sup_feed.vals = [q.get("sup", 2500000)]
                sup.sample()
                line += " %d %s" % (sup.millivolts, sup.fault or "-")
            out.write(line + "\n")


main()
