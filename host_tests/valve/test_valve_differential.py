"""The valve device on CPython and MicroPython: identical events, replies and state."""

import json

from hypothesis import given, settings, strategies as st

from conftest import run_both

LINES = ["STATUS?", "READ?", "LOG? 5", "HIST?", "SELFTEST", "ITEST", "HUSH", "CAL?", "HELLO",
         "CFG valve.under_pressure_pa 1500", "CFG valve.under_pressure_pa 99999", "OPEN",
         "\x01garbage", "x" * 300]
op = st.one_of(
    st.tuples(st.just("p"), st.sampled_from([0, 300, 500, 900, 2000, 9000, 12000])),
    st.tuples(st.just("f"), st.sampled_from([0, 500, 3000, 4000, 6000])),
    st.tuples(st.just("b"), st.integers(0, 4000)),
    st.tuples(st.just("h")),
    st.tuples(st.just("c"), st.sampled_from(LINES)),
    st.tuples(st.just("r"), st.integers(0, 5000)),
)


@settings(max_examples=8, deadline=None)
@given(st.lists(op, max_size=20))
def test_valve_device_identical_on_both_interpreters(ops):
    a, b = run_both("valve_app", json.dumps(ops).encode())
    assert a == b
    assert a.rstrip().splitlines()[-1].startswith(b"S {")
