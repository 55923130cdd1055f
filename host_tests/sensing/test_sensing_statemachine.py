"""Channel as a state machine: random sampling, sensor conditions, calibration changes,
ageing and clock jumps (across the ticks wrap); its reported state stays consistent."""

import struct

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gasguard import sensors
from gasguard.calibration import ChannelCal
from gasguard.sensing import FAULT_BITS, FAULT_CODES, N_FAULTS
from gasguard.sensors import Channel
from simboard import SimAnalogIn, SimClock


def active_faults(ch):
    """Every active fault code of a channel, highest priority first (the one table)."""
    return [FAULT_CODES[i] for i in range(N_FAULTS) if ch.fault_bits & FAULT_BITS[i]]


class ChannelMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.model = None

    @precondition(lambda self: self.model is None)
    @rule(kind=st.sampled_from(["mq4", "ec_co"]), start=st.integers(0, (1 << 30) - 1),
          warm=st.integers(0, 30), stuck=st.integers(0, 60), fc=st.integers(1, 4),
          cc=st.integers(1, 4), cal=st.booleans())
    def build(self, kind, start, warm, stuck, fc, cc, cal):
        self.model = sensors.from_config({"model": kind})
        self.truth = sensors.from_config({"model": kind})
        self.clock = SimClock(start)
        self.state = [0]
        self.cond = "ok"
        self.gas_x10 = 0
        self.adc = SimAnalogIn(self._src)
        c = ChannelCal(self.model.gas, kind, self.model.clean_air_uv) if cal else None
        self.ch = Channel(self.adc, self.clock, self.model, c,
                          {"warmup_s": warm, "stuck_s": stuck, "fault_count": fc,
                           "clear_count": cc, "filters": [{"median": 3}, {"ema": 128}]})
        self.warm_ms = warm * 1000
        self.t0 = self.clock.elapsed_ms
        self.frozen = None

    def _src(self):
        if self.cond == "open":
            return 0
        if self.cond == "short":
            return 3100000
        if self.cond == "stuck":
            return self.frozen
        self.state[0] = (self.state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return self.truth.uv(self.gas_x10) + (self.state[0] >> 16) % 201 - 100

    @precondition(lambda self: self.model is not None)
    @rule(dt=st.integers(0, 5000), n=st.integers(1, 10))
    def sample(self, dt, n):
        for _ in range(n):
            self.clock.advance(dt)
            if self.cond == "stuck" and self.frozen is None:
                self.frozen = self.ch.raw_uv or 1000000
            self.ch.sample()

    @precondition(lambda self: self.model is not None)
    @rule(cond=st.sampled_from(["ok", "ok", "open", "short", "stuck"]),
          gas=st.integers(0, 120000))
    def condition(self, cond, gas):
        self.cond = cond
        self.frozen = None
        self.gas_x10 = min(gas, self.model.range_ppm_x10)

    @precondition(lambda self: self.model is not None)
    @rule(days=st.integers(0, 3000))
    def age(self, days):
        self.ch.set_age_days(days)

    @precondition(lambda self: self.model is not None)
    @rule(zero=st.integers(0, 3300000), none=st.booleans())
    def recalibrate(self, zero, none):
        m = self.model
        self.ch.set_calibration(None if none else ChannelCal(m.gas, m.name, zero))

    @invariant()
    def consistent(self):
        if self.model is None:
            return
        ch = self.ch
        bits = ch.fault_bits
        active = [FAULT_CODES[i] for i in range(len(FAULT_BITS)) if bits & FAULT_BITS[i]]
        assert active_faults(ch) == active
        assert ch.fault == (active[0] if active else None)
        assert ch.reading_valid == (not bits & 15)
        if not ch.reading_valid:
            assert ch.ppm_x10 == 0 and ch.fault is not None
        assert 0 <= ch.ppm_x10 <= self.model.range_ppm_x10
        assert (ch.cal_problem is not None) == bool(bits & 16)
        assert (ch.age_days >= ch.service_life_days) == bool(bits & 32)
        assert ch.warming_up == (self.clock.elapsed_ms - self.t0 < self.warm_ms) or \
            ch.samples == 0
        # the stuck timer never grows without bound
        assert 0 <= ch._stuck_elapsed <= max(ch.stuck_ms, 0)
        for v in (ch.ppm_x10, ch.raw_uv, ch.filtered_uv):
            assert -(1 << 30) < v < (1 << 30)


ChannelMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                            deadline=None)
TestChannelMachine = ChannelMachine.TestCase


def test_float32_config_gives_the_same_integers():
    """The ESP32 parses config floats in single precision: the integer model parameters
    derived from them must not depend on it (or differ by at most one Q12 step)."""
    def f32(x):
        return struct.unpack("<f", struct.pack("<f", x))[0]

    for cfg in ({"model": "mq4"}, {"model": "mq4", "a": 987.6, "b": -2.63, "air_ratio": 4.8,
                                   "adc_div": 1.7}):
        d = sensors.from_config(cfg)
        s = sensors.from_config({k: f32(v) if isinstance(v, float) else v
                                 for k, v in cfg.items()})
        assert abs(d.b_q12 - s.b_q12) <= 1
        assert abs(d.c_q12 - s.c_q12) <= 1
        assert abs(d.air_q12 - s.air_q12) <= 1
        assert d.vtop_uv == s.vtop_uv
        for p in (0, 5000, 50000, 100000):
            uv = d.uv(p)
            assert abs(d.ppm_x10(uv) - s.ppm_x10(uv)) <= p // 500 + 2
    d = sensors.from_config({"model": "ec_co", "uv_per_ppm": 2345.6})
    s = sensors.from_config({"model": "ec_co", "uv_per_ppm": f32(2345.6)})
    assert d.s_nominal == s.s_nominal
