"""Replay runner (firmware side): the real Detector on the simulated board, driven by a
concentration timeline streamed on stdin, events printed as JSON lines on stdout.

Runs on CPython and MicroPython alike (`gasguard replay` starts it with
--runtime cpython|micropython). Protocol (docs/replay.md):

  stdin, one JSON object per line:
    1. header  {"device": "detector", "config": {detector config}, "seed": int,
                "noise": {"rel_pct": int, "ch4_ppm": int, "co_ppm": int},
                "stop_after_alarm": null | "any" | "ch4" | "co",
                "calibrated": true (false: no calibration record -> cal_missing),
                "sensor_t90_s": {"ch4_rise": 10, "ch4_fall": 30, "co_rise": 30, "co_fall": 30}}
    2. rows    {"t_ms": int, "<numeric column>_milli": int, "<text column>": str}
               (numeric values in thousandths; a missing key keeps its previous value)
    3. end     {"end_ms": int}
  stdout, one JSON object per line, in time order:
    {"t": seconds since power-on, "event": kind, ...other fields in sorted key order}
    ... and finally {"t": end, "event": "end", ...summary}.
  exit status 0; on a protocol error a line {"t": ..., "event": "error", "message": ...}
  and exit status 2.

The ADCs are driven through the sensor models' inverse (model.uv) of a "true" sensor
whose parameters deviate from nominal (seeded), and the device is calibrated against
that sensor with a zero and a span reading, so calibration and filtering are exercised.
Noise: seeded xorshift32, integer only, identical on both interpreters.
"""

import json
import sys

from replay_format import fmt_event
from simboard import MemStore, SimAnalogIn, SimClock, SimPin, Xorshift32
from gasguard import calibration, sensors
from gasguard.detector import Detector
from gasguard.validate import ConfigError

FULL_SCALE_UV = 3100000


class Rng(Xorshift32):
    """xorshift32 seeded from the header's seed: the same sequence on every interpreter,
    and no heap int per read on the ESP32's object model."""

    def __init__(self, seed):
        s = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF
        Xorshift32.__init__(self, s or 0x12345678)


class SimValveSink:
    """An interlock sink that records close requests (the valve closes and stays closed)."""

    def __init__(self):
        self.fault = None
        self.state = "idle"
        self.closes = 0

    def close(self, cause):
        self.closes += 1
        self.state = "confirmed"

    def poll(self):
        pass


class Env:
    def __init__(self):
        self.ch4_x10 = 0
        self.co_x10 = 0
        self.temp_x10 = 200
        self.rh = 50
        self.supply_mv = 5000
        self.cond = {"ch4": "ok", "co": "ok"}


class GasSource:
    """ADC source for one gas: truth model inverse + seeded noise, or a sensor failure.

    The inverse is evaluated when the concentration (or environment) changes; per read,
    noise is added through the local slope of the inverse (cheap, and the noise is small).
    """

    def __init__(self, gas, truth, env, rng, rel_pct, abs_x10, clock=None, rise_s=0, fall_s=0):
        self.gas = gas
        self.truth = truth
        self.clock = clock
        # first-order sensor response: time constant = T90 / 2.3 (rise and fall differ
        # for MOS sensors: MQ-4 response <= 10 s, recovery <= 30 s)
        self.tau_rise = rise_s * 1000 * 10 // 23
        self.tau_fall = fall_s * 1000 * 10 // 23
        self.eff = 0  # concentration the sensor element currently sees, ppm x 10
        self.t_eff = None
        self.env = env
        self.rng = rng
        self.rel_pct = rel_pct
        self.abs_x10 = abs_x10
        self.c = -1
        self.base = truth.uv(0)
        self.slope_q16 = 0
        self.amp = 0
        self.last = self.base
        self.frozen = None

    def _lag(self, target):
        clk = self.clock
        if clk is None:
            return target
        now = clk.elapsed_ms
        if self.t_eff is None:
            self.t_eff = now
            self.eff = target
            return target
        dt = now - self.t_eff
        if dt > 0:
            self.t_eff = now
            d = target - self.eff
            tau = self.tau_rise if d > 0 else self.tau_fall
            if tau <= 0:
                self.eff = target
            elif d:
                step = d * dt // (tau + dt) if d > 0 else -((-d) * dt // (tau + dt))
                if step == 0:
                    step = 1 if d > 0 else -1
                self.eff += step
        return self.eff

    def invalidate(self):
        self.c = -1

    def _prepare(self, c):
        t = self.truth
        self.c = c
        self.base = t.uv(c)
        amp = (c * self.rel_pct) // 100 + self.abs_x10
        self.amp = amp
        # secant over the noise range (the MOS curve is far from linear near clean air)
        lo = c - amp if c > amp else 0
        hi = c + (amp if amp > 0 else 1)
        s = ((t.uv(hi) - t.uv(lo)) * 65536) // (hi - lo)  # µV per ppm x 10, Q16
        # in three parts, so a read multiplies only small ints (a product beyond 2**30
        # is a heap int on the ESP32's object model): s = hi16 << 16 | mid8 << 8 | lo8
        self.slope_q16 = s
        self._s_hi = s >> 16
        self._s_mid = (s >> 8) & 255
        self._s_lo = s & 255

    def __call__(self):
        cond = self.env.cond[self.gas]
        if cond == "stuck":
            if self.frozen is None:
                self.frozen = self.last
            return self.frozen
        self.frozen = None
        if cond == "open":
            return 0
        if cond == "short":
            return FULL_SCALE_UV
        c = self.env.ch4_x10 if self.gas == "ch4" else self.env.co_x10
        c = self._lag(c)
        if c != self.c:
            self._prepare(c)
        rng = self.rng
        rng.step()
        # triangular noise in [-1024, 1024] from the state's two 16-bit halves
        tri = (rng.lo + rng.hi - 65535) >> 6
        n = (self.amp * tri) // 1024  # concentration noise, ppm x 10
        # (n * slope_q16) >> 16, exactly, with every intermediate inside 31 bits
        nv = n * self._s_hi + ((n * self._s_mid + ((n * self._s_lo) >> 8)) >> 8)
        v = self.base + nv + ((rng.lo >> 7) & 255) - 128
        self.last = v
        return v


class SupplySource:
    def __init__(self, env, divider_q10):
        self.env = env
        self.div = divider_q10
        self._mv = None
        self._uv = 0

    def __call__(self):
        mv = self.env.supply_mv
        if mv != self._mv:  # mv * 1024000 is a heap int on the ESP32: once per change
            self._mv = mv
            self._uv = (mv * 1000 * 1024) // self.div
        return self._uv


class Board:
    pass


def _truth_and_cal(rng, store, with_co, calibrated=True):
    """Sensors that deviate from nominal (seeded) and a calibration made against them."""
    d_r0 = 8000 + rng.next() % 4001  # R0 8..12 kΩ (nominal 10 kΩ)
    ch4_truth = sensors.from_config({"model": "mq4", "r0_ohm": d_r0})
    ch4_cfg = {"model": "mq4"}
    rec = calibration.CalibrationRecord()
    rec = rec.with_zero(ch4_cfg, ch4_truth.uv(0), 20260101, "replay")
    rec = rec.with_span(ch4_cfg, ch4_truth.uv(50000), 50000, 20260101, "replay")
    co_truth = None
    if with_co:
        zero = 380000 + rng.next() % 40001  # zero 380..420 mV
        sens = 2900 + rng.next() % 601  # 2900..3500 µV/ppm
        co_truth = sensors.from_config({"model": "ec_co", "zero_uv": zero, "uv_per_ppm": sens})
        co_cfg = {"model": "ec_co"}
        rec = rec.with_zero(co_cfg, co_truth.uv(0), 20260101, "replay")
        rec = rec.with_span(co_cfg, co_truth.uv(1000), 1000, 20260101, "replay")
    if calibrated:
        calibration.save(store, rec)
    return ch4_truth, co_truth


class Runner:
    def __init__(self, header, out):
        self.out = out
        cfg = header.get("config") or {}
        seed = header.get("seed", 0)
        noise = header.get("noise") or {}
        self.stop = header.get("stop_after_alarm")
        self.clock = SimClock(header.get("clock_start_ms"))
        self.env = Env()
        rng = Rng(seed)
        self.store = MemStore()
        tier = cfg.get("tier", "mid")
        with_co = tier != "low"
        ch4_truth, co_truth = _truth_and_cal(rng, self.store, with_co,
                                             header.get("calibrated", True))
        b = Board()
        b.clock = self.clock
        rel = noise.get("rel_pct", 3)
        t90 = header.get("sensor_t90_s") or {}
        b.adc_ch4 = SimAnalogIn(GasSource("ch4", ch4_truth, self.env, rng, rel,
                                          noise.get("ch4_ppm", 50) * 10, self.clock,
                                          t90.get("ch4_rise", 10), t90.get("ch4_fall", 30)))
        b.adc_co = None
        if with_co:
            b.adc_co = SimAnalogIn(GasSource("co", co_truth, self.env, rng, rel,
                                             noise.get("co_ppm", 2) * 10, self.clock,
                                             t90.get("co_rise", 30), t90.get("co_fall", 30)))
        b.adc_supply = SimAnalogIn(SupplySource(self.env, 2048))
        for name in ("led_green", "led_yellow", "led_red", "buzzer", "relay"):
            p = SimPin(name, SimPin.OUT)
            p.clock = self.clock
            setattr(b, name, p)
        b.button = SimPin("button", SimPin.IN, 0)
        self.board = b
        self.done = False
        self.stop_hit = False
        self.det = Detector(b, cfg, self.store, self.emit)
        if self.det.cfg["interlock_required"] or self.det.cfg["interlock_on_co"]:
            self.sink = SimValveSink()
            self.det.interlocks.append(self.sink)
        self.period = self.det.period_ms
        self.next_ms = 0

    def emit(self, ev):
        if self.done:
            return
        self.out.write(fmt_event(self.clock.elapsed_ms, ev))
        if self.stop and ev.get("event") == "alarm" and ev.get("state") == "on":
            if self.stop == "any" or self.stop == ev.get("gas"):
                self.stop_hit = True  # finish this step's events, then stop

    def advance_to(self, target, inclusive=False):
        clock = self.clock
        det = self.det
        while not self.done and (self.next_ms < target or (inclusive and self.next_ms == target)):
            d = self.next_ms - clock.elapsed_ms
            if d > 0:
                clock.advance(d)
            det.poll()
            self.next_ms += self.period
            if self.stop_hit:
                self.done = True
        if not self.done and target > clock.elapsed_ms:
            clock.advance(target - clock.elapsed_ms)

    def apply(self, row):
        """Set the row's levels, then perform its action (the order of keys in a JSON
        object is not the same on both interpreters, so it must not matter)."""
        env = self.env
        for k in row:
            v = row[k]
            if k == "t_ms" or k == "button":
                continue
            if k == "ch4_ppm_milli":
                env.ch4_x10 = v // 100
            elif k == "co_ppm_milli":
                env.co_x10 = v // 100
            elif k == "temp_c_milli":
                env.temp_x10 = v // 100
            elif k == "rh_pct_milli":
                env.rh = v // 1000
            elif k == "supply_v_milli":
                env.supply_mv = v
            elif k == "ch4_sensor" or k == "co_sensor":
                if v not in ("ok", "open", "short", "stuck"):
                    raise ValueError("%s: %r is not ok, open, short or stuck" % (k, v))
                env.cond[k[:-7]] = v
            else:
                raise ValueError("unknown row key %r" % (k,))
        if "temp_c_milli" in row or "rh_pct_milli" in row:
            self.det.set_environment(env.temp_x10, env.rh)
            # the true sensors feel the same environment
            for src in (self.board.adc_ch4, self.board.adc_co):
                if src is not None:
                    src.source.truth.set_environment(env.temp_x10, env.rh)
                    src.source.invalidate()
        b = row.get("button")
        if b == "press":
            self.det.button_pressed(False)
        elif b == "long_press":
            self.det.button_pressed(True)
        elif b is not None:
            raise ValueError("button: %r is not press or long_press" % (b,))

    def finish(self, end_ms):
        self.done = False
        st = self.det.status()
        ev = {"event": "end", "alarm_ch4": st["ch4"]["alarm"],
              "peak_ch4_ppm_x10": st["ch4"]["peak_ppm_x10"], "faults": st["faults"],
              "relay": st["relay"], "interlock_requests": st["interlock_requests"]}
        if "co" in st:
            ev["alarm_co"] = st["co"]["alarm"]
            ev["peak_co_ppm_x10"] = st["co"]["peak_ppm_x10"]
            ev["co_dose_pct"] = st["co"]["dose_pct"]
        self.out.write(fmt_event(self.clock.elapsed_ms, ev))


def main(inp=None, out=None):
    inp = inp or sys.stdin
    out = out or sys.stdout
    line = inp.readline()
    try:
        header = json.loads(line)
        if header.get("device", "detector") != "detector":
            raise ValueError("this runner replays detectors, not %r" % header.get("device"))
        r = Runner(header, out)
    except (ValueError, KeyError, ConfigError) as e:
        out.write(fmt_event(0, {"event": "error", "message": "header: %s" % e}))
        return 2
    n = 1
    while True:
        line = inp.readline()
        if not line:
            out.write(fmt_event(r.clock.elapsed_ms, {"event": "error",
                                                     "message": "input ended without end_ms"}))
            return 2
        n += 1
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if "end_ms" in msg:
                r.advance_to(msg["end_ms"], True)
                r.finish(msg["end_ms"])
                return 0
            t = msg["t_ms"]
            if t < r.clock.elapsed_ms:
                raise ValueError("t_ms %d goes back in time" % t)
            r.advance_to(t)
            if not r.done:
                r.apply(msg)
                if r.stop_hit:
                    r.done = True
        except (ValueError, KeyError, TypeError) as e:
            out.write(fmt_event(r.clock.elapsed_ms, {"event": "error",
                                                     "message": "input line %d: %s" % (n, e)}))
            return 2
        if r.done:
            # stop_after_alarm: drain the input quietly, then summarise
            end = r.clock.elapsed_ms
            while True:
                line = inp.readline()
                if not line:
                    break
            r.finish(end)
            return 0


if __name__ == "__main__":
    sys.exit(main())
