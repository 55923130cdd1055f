"""Reporting on CPython and MicroPython: the same operations give the same packets."""

import json

from hypothesis import given, settings, strategies as st

from conftest import run_both


reporting_op = st.one_of(
    st.tuples(st.just("ev"), st.integers(1, 2), st.integers(0, 10 ** 6)),
    st.tuples(st.just("tele"), st.integers(0, 50000)),
    st.tuples(st.just("down")),
    st.tuples(st.just("noack")),
    st.tuples(st.just("cmd"), st.integers(1, 1000)),
    st.tuples(st.just("run"), st.integers(0, 200)),
)


@settings(max_examples=8, deadline=None)
@given(st.lists(reporting_op, max_size=25))
def test_reporting_identical_on_both_interpreters(ops):
    a, b = run_both("reporting", json.dumps(ops).encode())
    assert a == b
    assert b"status" in a
