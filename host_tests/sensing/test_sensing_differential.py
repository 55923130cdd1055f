"""Sensing on CPython and on MicroPython: the same generated µV sequences give the same
ppm×10, filtered values, faults and inverse µV, byte for byte."""

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import run_both

PERIOD = 1 << 30

mos = st.fixed_dictionaries(
    {"model": st.just("mq4")},
    optional={"r0_ohm": st.integers(3000, 30000), "b": st.floats(-3.5, -1.0),
              "temp_comp": st.just([[-10, 1.5], [20, 1.0], [50, 0.7]])})
co = st.fixed_dictionaries(
    {"model": st.just("ec_co")},
    optional={"uv_per_ppm": st.floats(500.0, 6000.0), "tc_pct_per_c": st.floats(-1.0, 1.0),
              "zero_tc_uv_per_c": st.integers(-200, 200)})
channel = st.fixed_dictionaries(
    {},
    optional={"oversample": st.integers(1, 16),
              "filters": st.sampled_from([[], [{"median": 5}], [{"ema": 40}],
                                          [{"delta": {"max": 100000, "hold": 2}},
                                           {"median": 3}, {"ema": 128}]]),
              "warmup_s": st.integers(0, 20), "stuck_s": st.integers(0, 15),
              "fault_count": st.integers(1, 4)})
uv = st.one_of(st.integers(0, 3300000), st.sampled_from([0, 5, 3300000]))
step = st.fixed_dictionaries(
    {"dt": st.integers(0, 3000), "uv": st.lists(uv, min_size=1, max_size=4)},
    optional={"temp": st.integers(-400, 850), "rh": st.integers(0, 100),
              "age": st.integers(0, 4000), "sup": st.integers(0, 3300000)})


@st.composite
def scenario(draw):
    sensor = draw(st.one_of(mos, co))
    setup = {"sensor": sensor, "channel": draw(channel),
             "cal": draw(st.none() | st.lists(st.integers(0, 3300000), min_size=1, max_size=1)
                         | st.tuples(st.integers(300000, 1000000), st.integers(0, 3300000),
                                     st.integers(100, 50000)).map(list)),
             "start": draw(st.integers(0, PERIOD - 1)),
             "supply": draw(st.none() | st.just({}))}
    lines = [{"setup": setup}]
    steps = draw(st.lists(step, min_size=1, max_size=40))
    # runs of identical readings, so the stuck timer has something to do
    for s in steps:
        lines.append(s)
        if draw(st.booleans()):
            lines.extend([dict(s, dt=1000)] * draw(st.integers(1, 20)))
    lines += [{"inv": p} for p in draw(st.lists(st.integers(0, 100000), max_size=5))]
    return lines


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenario(), min_size=1, max_size=3))
def test_sensing_identical_on_both_interpreters(scenarios):
    lines = [ln for sc in scenarios for ln in sc]
    stdin = "".join(json.dumps(x) + "\n" for x in lines).encode()
    a, b = run_both("sensing", stdin)
    assert a == b
    assert len(a.splitlines()) == len(lines)
