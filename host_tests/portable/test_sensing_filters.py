"""Integer filters: behaviour, bounds and validated parameters."""

from gasguard import sensors as filters
from gasguard.sensors import Clamp, DeltaReject, Ema, Median, MovingAverage, Pipeline
from gasguard.validate import ConfigError
from ptest import raises


def test_median_rejects_single_spikes():
    f = Median(3)
    out = [f.update(x) for x in (100, 100, 5000, 100, 100, -4000, 100)]
    assert out == [100, 100, 100, 100, 100, 100, 100]


def test_median_before_window_full_and_step_passes():
    f = Median(5)
    assert f.update(10) == 10
    assert f.update(20) in (10, 20)
    out = [f.update(x) for x in (30, 30, 30, 30)]
    assert out[-1] == 30


def test_median_window_must_be_odd_and_bounded():
    raises(ConfigError, Median, 4)
    raises(ConfigError, Median, 0)
    raises(ConfigError, Median, 17)
    raises(ConfigError, Median, "3")


def test_ema_converges_and_is_exact_for_alpha_one():
    f = Ema(256)
    assert [f.update(x) for x in (5, 9, -3)] == [5, 9, -3]
    g = Ema(64)
    g.update(0)
    y = 0
    for _ in range(200):
        y = g.update(1000000)
    assert 999990 <= y <= 1000000
    for _ in range(200):
        y = g.update(0)
    assert 0 <= y <= 10


def test_ema_half_step():
    f = Ema(128)
    f.update(0)
    assert f.update(1000) == 500
    assert f.update(1000) == 750


def test_ema_bad_alpha():
    raises(ConfigError, Ema, 0)
    raises(ConfigError, Ema, 257)
    raises(ConfigError, Ema, 0.5)


def test_clamp():
    f = Clamp(-5, 5)
    assert [f.update(x) for x in (-9, -5, 0, 5, 9)] == [-5, -5, 0, 5, 5]
    raises(ConfigError, Clamp, 5, -5)


def test_delta_reject_holds_spikes_then_accepts_a_real_step():
    f = DeltaReject(100, 2)
    assert f.update(1000) == 1000
    assert f.update(5000) == 1000  # spike held
    assert f.update(1010) == 1010  # spike gone
    assert f.update(5000) == 1010
    assert f.update(5000) == 1010
    assert f.update(5000) == 5000  # persisted beyond hold: real
    assert f.rejected == 3
    raises(ConfigError, DeltaReject, 0)
    raises(ConfigError, DeltaReject, 100, 11)


def test_moving_average():
    f = MovingAverage(4)
    assert f.update(4) == 4
    assert f.update(8) == 6
    for x in (8, 8, 8, 8):
        y = f.update(x)
    assert y == 8


def test_pipeline_from_data_and_reset():
    p = Pipeline([{"delta": {"max": 1000, "hold": 1}}, {"median": 3}, {"ema": {"alpha_256": 256}},
                  {"clamp": [0, 3000]}, {"average": 1}, {"offset": 0}])
    assert p.update(2000) == 2000
    assert p.update(90000) == 2000
    assert p.update(2500) in (2000, 2500)
    p.reset()
    assert p.update(-50) == 0


def test_pipeline_bad_specs_are_refused_whole():
    for spec in ([{"median": 3, "ema": 5}], [{"nope": 1}], "median", [{"clamp": [1]}],
                 [{"ema": {"alpha": 3}}], [{"median": 3}] * 9, [{"delta": {"max": 5, "x": 1}}]):
        raises(ConfigError, Pipeline, spec)


def test_extreme_inputs_are_clipped_to_the_filter_domain():
    big = 1 << 40
    for f in (Median(3), Ema(200), MovingAverage(32), DeltaReject(5)):
        for x in (big, -big, big, big):
            y = f.update(x)
            assert -(1 << 24) < y < (1 << 24)
