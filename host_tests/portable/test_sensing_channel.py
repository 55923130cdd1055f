"""Channel: oversampling, faults as explicit states with debounce, warm-up, no allocation."""

import sys

from gasguard import calibration, sensors
from gasguard.sensing import FAULT_BITS, FAULT_CODES, N_FAULTS
from gasguard.sensors import pct_lel_x10
from gasguard.sensors import Channel
from gasguard.validate import ConfigError
from ptest import raises
from simboard import SimAnalogIn, SimClock


def active_faults(ch):
    """Every active fault code of a channel, highest priority first (the one table)."""
    return [FAULT_CODES[i] for i in range(N_FAULTS) if ch.fault_bits & FAULT_BITS[i]]


def _ch4(cfg=None, source=None, cal=True, clock=None):
    m = sensors.MethaneMOS({})
    clock = clock or SimClock()
    adc = SimAnalogIn(m.clean_air_uv if source is None else source)
    c = None
    if cal:
        c = calibration.ChannelCal("ch4", "mq4", m.clean_air_uv, None, None, 20260101, "test")
    return Channel(adc, clock, m, c, cfg or {}), adc, clock, m


def _co(cfg=None, source=None, clock=None):
    m = sensors.ElectrochemCO({})
    clock = clock or SimClock()
    adc = SimAnalogIn(400000 if source is None else source)
    c = calibration.ChannelCal("co", "ec_co", 400000, None, None, 20260101, "test")
    return Channel(adc, clock, m, c, cfg or {}), adc, clock, m


def _run(ch, clock, n, ms=1000):
    for _ in range(n):
        clock.advance(ms)
        ch.sample()


def test_clean_air_reads_zero_and_no_fault():
    ch, adc, clock, m = _ch4()
    _run(ch, clock, 5)
    assert ch.ppm_x10 == 0
    assert ch.fault is None
    assert ch.gas == "ch4"
    assert ch.raw_uv == m.clean_air_uv == m.zero_uv


def test_gas_reads_back_through_the_chain():
    ch, adc, clock, m = _ch4()
    adc.source = m.uv(50000)  # 5000 ppm
    _run(ch, clock, 5)
    assert abs(ch.ppm_x10 - 50000) <= 250, ch.ppm_x10
    assert pct_lel_x10(ch.ppm_x10, ch.model.lel_ppm) in (99, 100, 101)


def test_warm_up_ends_after_configured_time_and_still_reads():
    ch, adc, clock, m = _ch4({"warmup_s": 10})
    adc.source = m.uv(80000)
    _run(ch, clock, 9)
    assert ch.warming_up
    assert ch.ppm_x10 > 70000  # gross leak visible during warm-up
    _run(ch, clock, 1)
    assert not ch.warming_up


def test_warm_up_survives_ticks_wrap():
    clock = SimClock(start_ms=(1 << 30) - 3000)
    ch, adc, clock, m = _ch4({"warmup_s": 20}, clock=clock)
    _run(ch, clock, 19)
    assert ch.warming_up
    _run(ch, clock, 1)
    assert not ch.warming_up


def test_open_sensor_after_debounce_and_clears():
    ch, adc, clock, m = _ch4({"warmup_s": 0})
    _run(ch, clock, 3)
    adc.source = 0
    _run(ch, clock, 2)
    assert ch.fault is None
    _run(ch, clock, 1)
    assert ch.fault == "sensor_open"
    assert ch.ppm_x10 == 0
    adc.source = m.clean_air_uv
    _run(ch, clock, 2)
    assert ch.fault == "sensor_open"
    _run(ch, clock, 1)
    assert ch.fault is None


def test_short_sensor_is_a_fault_not_a_reading():
    ch, adc, clock, m = _ch4({"warmup_s": 0})
    adc.source = m.vtop_uv
    _run(ch, clock, 3)
    assert ch.fault == "sensor_short"
    assert ch.ppm_x10 == 0
    assert not ch.reading_valid


def test_open_not_reported_during_warm_up_but_short_is():
    ch, adc, clock, m = _ch4({"warmup_s": 60})
    adc.source = 0
    _run(ch, clock, 10)
    assert ch.fault is None
    adc.source = m.vtop_uv
    _run(ch, clock, 3)
    assert ch.fault == "sensor_short"


def test_stuck_mos_reading():
    ch, adc, clock, m = _ch4({"warmup_s": 0, "stuck_s": 30})
    _run(ch, clock, 30)
    assert ch.fault is None
    _run(ch, clock, 1)
    assert ch.fault == "sensor_stuck"
    assert ch.ppm_x10 == 0
    adc.source = m.clean_air_uv + 1
    _run(ch, clock, 1)
    assert ch.fault is None


def test_noisy_mos_reading_is_not_stuck():
    state = [0]

    def noisy():
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return 780000 + (state[0] >> 16) % 2000

    ch, adc, clock, m = _ch4({"warmup_s": 0, "stuck_s": 30}, source=noisy)
    _run(ch, clock, 100)
    assert ch.fault is None


def test_flat_co_cell_with_adc_noise_is_not_stuck():
    state = [7]

    def quiet():  # a clean-air cell: flat, only a few µV of ADC noise
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return 400000 + (state[0] >> 16) % 5

    ch, adc, clock, m = _co({"warmup_s": 0}, source=quiet)
    _run(ch, clock, 400, ms=10000)
    assert ch.fault is None
    assert ch.ppm_x10 == 0


def test_bit_identical_co_reading_for_an_hour_is_stuck():
    ch, adc, clock, m = _co({"warmup_s": 0})
    _run(ch, clock, 360, ms=10000)
    assert ch.fault is None
    _run(ch, clock, 1, ms=10000)
    assert ch.fault == "sensor_stuck"


def test_co_far_below_zero_is_out_of_range():
    ch, adc, clock, m = _co({"warmup_s": 0})
    adc.source = 400000 - 100 * 3200  # -100 ppm
    _run(ch, clock, 3)
    assert ch.fault == "out_of_range"
    assert ch.ppm_x10 == 0


def test_over_range_is_full_scale_not_a_fault():
    ch, adc, clock, m = _co({"warmup_s": 0})
    adc.source = 400000 + 700 * 3200
    _run(ch, clock, 3)
    assert ch.fault is None
    assert ch.over_range
    assert ch.ppm_x10 == 5000


def test_missing_calibration_still_reads_on_nominal_model():
    ch, adc, clock, m = _ch4(cal=False)
    assert ch.fault == "cal_missing"
    adc.source = m.uv(100000)
    _run(ch, clock, 3)
    assert ch.fault == "cal_missing"
    assert ch.ppm_x10 > 90000
    assert ch.reading_valid


def test_calibration_for_another_model_is_refused():
    m = sensors.MethaneMOS({})
    c = calibration.ChannelCal("ch4", "mos_ch4", m.clean_air_uv, None, None, 20260101, "x")
    ch = Channel(SimAnalogIn(m.clean_air_uv), SimClock(), m, c, {})
    assert ch.fault == "cal_missing"
    assert "mos_ch4" in ch.cal_problem


def test_end_of_life():
    ch, adc, clock, m = _ch4()
    ch.set_age_days(1825)
    assert ch.fault is None
    ch.set_age_days(1826)
    assert ch.fault == "end_of_life"
    _run(ch, clock, 3)
    assert ch.ppm_x10 == 0 and ch.fault == "end_of_life"
    raises(ValueError, ch.set_age_days, -1)


def test_fault_priority_and_bits():
    ch, adc, clock, m = _ch4({"warmup_s": 0}, cal=False)
    ch.set_age_days(5000)
    adc.source = 0
    _run(ch, clock, 3)
    assert ch.fault == "sensor_open"
    assert active_faults(ch) == ["sensor_open", "cal_missing", "end_of_life"]


def test_spike_in_the_burst_is_trimmed():
    seq = [0]

    def src():
        seq[0] += 1
        return 3000000 if seq[0] % 8 == 3 else 1000000

    ch, adc, clock, m = _ch4({"warmup_s": 0}, source=src)
    _run(ch, clock, 3)
    assert ch.raw_uv == 1000000


def test_bad_config_is_refused():
    m = sensors.MethaneMOS({})
    for cfg in ({"oversample": 0}, {"trim": 5}, {"filters": [{"median": 4}]},
                {"bogus": 1}, {"rail_low_uv": 3000000, "rail_high_uv": 10}):
        raises(ConfigError, Channel, SimAnalogIn(0), SimClock(), m, None, cfg)


def test_steady_state_sample_allocates_nothing():
    if sys.implementation.name != "micropython":
        return
    import gc

    from simboard import Xorshift32

    rng = Xorshift32(1)  # an LCG's 31-bit product would allocate on the ESP32 by itself

    def noisy():
        rng.step()
        return 1400000 + rng.lo % 3000

    for build in (_ch4, _co):
        ch, adc, clock, m = build({"filters": [{"delta": 200000}, {"median": 5}, {"ema": 64}]},
                                  source=noisy)
        ch.set_environment(250, 50)
        _run(ch, clock, 20)
        gc.collect()
        gc.disable()
        try:
            before = gc.mem_alloc()
            i = 0
            while i < 200:
                clock.advance(1000)
                ch.sample()
                i += 1
            grown = gc.mem_alloc() - before
        finally:
            gc.enable()
        assert grown == 0, "%s: %d bytes allocated in 200 samples" % (ch.gas, grown)


def test_set_calibration_clears_and_raises_cal_missing():
    ch, adc, clock, m = _ch4(cal=False)
    assert ch.fault == "cal_missing"
    good = calibration.ChannelCal("ch4", "mq4", 900000, None, None, 20260101, "op")
    ch.set_calibration(good)
    assert ch.fault is None and ch.cal_problem is None
    assert m.clean_air_uv == 900000
    adc.source = 900000
    _run(ch, clock, 3)
    assert ch.ppm_x10 == 0
    ch.set_calibration(calibration.ChannelCal("ch4", "mq4", 10, None, None, 20260101, "op"))
    assert ch.fault == "cal_missing"
    assert "window" in ch.cal_problem


def test_gross_leak_alarms_on_the_nominal_model_without_calibration():
    """docs/calibration.md: a sensor 2x less sensitive than nominal, no calibration record,
    still reads above 10 %LEL at the LEL."""
    truth = sensors.MethaneMOS({"r0_ohm": 20000})
    ch, adc, clock, m = _ch4({"warmup_s": 0}, source=truth.uv(500000), cal=False)
    _run(ch, clock, 3)
    assert ch.fault == "cal_missing" and ch.reading_valid
    assert pct_lel_x10(ch.ppm_x10, ch.model.lel_ppm) >= 140
