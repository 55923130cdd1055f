"""Sensor models: fixed-point math, forward/inverse, ranges, compensation, config checks."""

from gasguard import sensing, sensors
from gasguard.sensing import exp2_q12, log2_q12
from gasguard.sensors import OK, OVER, UNDER
from gasguard.sensors import log2_real_q12
from gasguard.validate import ConfigError
from ptest import raises


def test_log2_exact_at_powers_of_two():
    for e in range(30):
        assert log2_q12(1 << e) == e * 4096
    assert log2_q12(0) == 0
    assert log2_q12(3) in (6492, 6493)  # log2(3)·4096 = 6492.3


def test_exp2_exact_at_integers_and_saturates():
    for n in range(0, 29):
        assert exp2_q12(n * 4096) == 1 << n
    assert exp2_q12(-3 * 4096) == 0
    assert exp2_q12(100 * 4096) == exp2_q12(29 * 4096 - 1) <= 1 << 29


def test_log_exp_relative_error_small():
    for x in (5, 77, 1000, 4097, 65535, 123457, 9999999, (1 << 29) - 1):
        y = exp2_q12(log2_q12(x))
        assert abs(y - x) * 1000 <= x + 1000, (x, y)


def test_log2_real_for_config_values():
    assert log2_real_q12(1.0) == 0
    assert log2_real_q12(0.5) == -4096
    assert abs(log2_real_q12(4.4) - 8755) <= 1  # log2(4.4) = 2.1375


def test_mq4_datasheet_points():
    m = sensors.MethaneMOS({})
    # Rs/R0 from the fit at 5000 ppm: (5000/1012.7)^(-1/2.786) = 0.5637
    rs = int(10000 * 0.5637)
    uv = m.vtop_uv * 20000 // (20000 + rs)
    p = m.ppm_x10(uv)
    assert abs(p - (50000 - 162)) <= 150, p  # minus the clean-air term of the fit (16 ppm)
    assert m.status == OK


def test_mq4_clean_air_reads_zero_and_round_trip():
    m = sensors.MethaneMOS({})
    assert m.ppm_x10(m.clean_air_uv) == 0
    for p in (10, 100, 500, 3000, 5000, 12500, 50000, 99000):
        uv = m.uv(p)
        back = m.ppm_x10(uv)
        assert abs(back - p) <= p // 100 + 10, (p, uv, back)


def test_mq4_over_range_and_high_rs():
    m = sensors.MethaneMOS({})
    assert m.ppm_x10(m.vtop_uv - 10) == m.range_ppm_x10
    assert m.status == OVER
    assert m.ppm_x10(m.clean_air_uv // 6) == 0
    assert m.status == UNDER


def test_mq4_temperature_compensation_hook():
    m = sensors.MethaneMOS({"temp_comp": [[-10, 1.4], [20, 1.0], [50, 0.8]]})
    uv = m.uv(20000)
    base = m.ppm_x10(uv)
    m.set_environment(-100)  # cold: Rs reads higher, compensation brings it back
    cold = m.ppm_x10(uv)
    assert cold > base * 2
    m.set_environment(200)
    assert m.ppm_x10(uv) == base
    m.set_environment(900)  # beyond the table: flat
    assert m.comp_q12 == log2_real_q12(0.8)


def test_mos_generic_needs_fit_parameters():
    raises(ConfigError, sensors.from_config, {"model": "mos_ch4"})
    m = sensors.from_config({"model": "mos_ch4", "a": 5000.0, "b": -2.15, "air_ratio": 5.0})
    assert m.name == "mos_ch4" and m.gas == "ch4"


def test_mos_bad_configs():
    for cfg in ({"b": 1.0}, {"rl_ohm": 5}, {"adc_div": 1.0, "vc_mv": 5000}, {"what": 1},
                {"rs_air_min_ohm": 9000, "rs_air_max_ohm": 8000}, {"lel_vol_pct": 3.0},
                {"temp_comp": [[20, 1.0], [10, 1.1]]}, {"temp_comp": [[20, 0.0]]}):
        raises(ConfigError, sensors.MethaneMOS, cfg)


def test_pct_lel():
    assert sensors.pct_lel_x10(50000) == 100
    assert sensors.pct_lel_x10(50000, sensors.lel_ppm(4.4)) == 113
    assert sensors.pct_lel_x10(-5) == 0
    assert sensors.lel_ppm(5.0) == 50000
    raises(ConfigError, sensors.lel_ppm, 6.0)
    m = sensors.MethaneMOS({"lel_vol_pct": 4.4})
    assert sensors.pct_lel_x10(44000, m.lel_ppm) == 100


def test_co_linear_round_trip_exact():
    m = sensors.ElectrochemCO({})
    for p in range(0, 5001, 7):
        assert m.ppm_x10(m.uv(p)) == p
    assert m.ppm_x10(400000) == 0
    assert m.ppm_x10(400000 + 3200) == 10


def test_co_negative_and_over_range():
    m = sensors.ElectrochemCO({})
    assert m.ppm_x10(400000 - 10 * 3200) == 0 and m.status == OK
    assert m.ppm_x10(400000 - 30 * 3200) == 0 and m.status == UNDER
    assert m.ppm_x10(2800000) == 5000 and m.status == OVER


def test_co_temperature_coefficient():
    m = sensors.ElectrochemCO({"tc_pct_per_c": 0.5, "zero_tc_uv_per_c": 100})
    uv = m.uv(1000)
    m.set_environment(400)  # +20 °C: sensitivity +10 %, zero +2000 µV
    assert m.zero_eff == 402000
    assert abs(m.ppm_x10(uv) - (1000 * 10 // 11 - 6)) <= 3, m.ppm_x10(uv)
    assert m.ppm_x10(m.uv(1000)) == 1000


def test_from_config_names():
    assert isinstance(sensors.from_config({"model": "mq4"}), sensing.MethaneMOS)
    assert isinstance(sensors.from_config({"model": "ec_co"}), sensing.ElectrochemCO)
    raises(ConfigError, sensors.from_config, {"model": "mq7"})
    raises(ConfigError, sensors.from_config, "mq4")
    raises(ConfigError, sensors.from_config, {"model": "ec_co", "uv_per_ppm": 1.0})
