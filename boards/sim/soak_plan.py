"""What happens on each day of the soak (boards/sim/soak.py), as plain data.

Runs on CPython (the host runner decides the reboots and checks the alarms from it) and on
the ESP32-like interpreter (the device's harness drives the air and the network from it),
so both sides see the same day. Deterministic from (day, seed); every number is a small
int (no big ints on the 32-bit interpreter).

plan(day, seed, kind, co=True) -> list of (t0_ms, t1_ms, what, value), t in ms of that day
(co=False: a detector without a CO channel, the low tier: no CO at its sensor, and the
night's CO leak is a methane leak instead, so it still has a leak most nights):
  "ch4", "co"   gas at the sensor, ppm x10 (the highest active interval counts)
  "pressure"    valve: an over-pressure on the line (value 1)
  "outage"      the broker unreachable
  "console"     a service console session at t0
  "noise"       a burst of malformed and unsigned downlink messages at t0
  "reboot"      the device restarts from its store at t0 (a new process)
and the expectation of each gas interval, expect(item, kind):
  "alarm"   a leak: above the level-1 point (5000 ppm, 10 %LEL) or the CO alarm level for
            longer than the confirmation delay + the sensor's response: must alarm and close
  "quiet"   cooking-like interference below the alarm point, or above it for less than the
            15 s confirmation delay: must not alarm (GB 15322: never before 15 s above)
"""

DAY_MS = 86400000
HOUR_MS = 3600000
MIN_MS = 60000
CH4_L1_X10 = 50000  # 10 %LEL of methane (LEL 5 %vol), ppm x10: the cn profile's level-1 point
CH4_DELAY_MS = 15000  # its confirmation delay


class Lcg:
    """A 15-bit linear congruential generator: small ints only on the 32-bit interpreter."""

    def __init__(self, seed):
        self.x = seed & 0x7FFF or 1

    def below(self, n):
        self.x = (self.x * 1103 + 4561) & 0x7FFF
        return (self.x >> 3) % n

    def between(self, lo, hi):
        return lo + self.below(hi - lo + 1)


def plan(day, seed, kind="detector", co=True):
    r = Lcg(seed * 131 + day * 7919 + 17)
    out = []
    det = kind == "detector"
    gas2 = "co" if co else "ch4"  # every draw stays as it is: the other devices' days do not move
    for hour in (7, 12, 18):  # meals: cooking interference below the alarm point
        t = hour * HOUR_MS + r.between(0, 40) * MIN_MS
        if det:
            out.append((t, t + r.between(60, 300) * 1000, "ch4", r.between(5000, 35000)))
            c = (t, t + r.between(8, 25) * MIN_MS, "co", r.between(100, 350))
            if co:
                out.append(c)
            if r.below(2) == 0:  # a brief whiff above the level-1 point (a burner lit late)
                s = t + 30000
                out.append((s, s + r.between(3, 8) * 1000, "ch4", r.between(60000, 150000)))
            if r.below(3) == 0:  # a short CO bump above the no-alarm level (a pan burnt)
                s = t + 10 * MIN_MS
                c = (s, s + r.between(2, 5) * MIN_MS, "co", r.between(600, 1200))
                if co:
                    out.append(c)
    # a leak most nights, sometimes during a broker outage (the event waits in the outbox)
    night = 2 * HOUR_MS + r.between(0, 120) * MIN_MS
    during_outage = r.below(2) == 0
    if during_outage:
        out.append((night - 10 * MIN_MS, night + r.between(30, 90) * MIN_MS, "outage", 0))
    leak = day == 0 or (day != 1 and r.below(5) < 3)
    co_leak = day == 1 or r.below(4) == 0
    if det and leak:
        out.append((night, night + r.between(120, 360) * 1000, "ch4", r.between(75000, 250000)))
    if det and co_leak:
        t = night + 10 * MIN_MS
        v = r.between(4000, 5000)  # 400-500 ppm CO; as methane: 20-25 %LEL
        out.append((t, t + 15 * MIN_MS, gas2, v if co else v * 25))
    if not det and (leak or co_leak):
        out.append((night, night + 30000, "pressure", 1))
    t = 10 * HOUR_MS + r.between(0, 60) * MIN_MS
    out.append((t, t + r.between(5, 60) * MIN_MS, "outage", 0))
    for hour in (9, 15, 22):
        t = hour * HOUR_MS + r.between(0, 50) * MIN_MS
        out.append((t, t, "noise", 0))
    t = 20 * HOUR_MS + r.between(0, 60) * MIN_MS
    out.append((t, t, "console", 0))
    if day % 4 == 1:  # restarts from its store, out of any gas interval
        t = 16 * HOUR_MS + r.between(0, 60) * MIN_MS
        out.append((t, t, "reboot", 0))
    if day % 8 == 5 and during_outage:  # and one during an outage, with events queued
        out.append((night + 29 * MIN_MS, night + 29 * MIN_MS, "reboot", 0))
    out.sort()
    return out


def expect(item):
    """"alarm", "quiet" or None for one plan item (see the module doc)."""
    t0, t1, what, v = item
    if what == "ch4":
        if v >= CH4_L1_X10 * 3 // 2 and t1 - t0 >= 120000:
            return "alarm"
        if v < CH4_L1_X10 or t1 - t0 < CH4_DELAY_MS:
            return "quiet"
    elif what == "co":
        if v >= 4000 and t1 - t0 >= 15 * MIN_MS:
            return "alarm"  # 400 ppm and more for 15 min: every profile's CO alarm (4-15 min)
        if v <= 1200 and t1 - t0 <= 25 * MIN_MS:
            return "quiet"  # <= 120 ppm for <= 25 min, or <= 35 ppm for long: no CO alarm
    elif what == "pressure":
        return "alarm"
    return None


def reboots(day, seed, kind="detector"):
    return [it[0] for it in plan(day, seed, kind) if it[2] == "reboot"]
