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


def test_retransmissions_go_in_send_order_on_both_interpreters():
    """Found by this test's search: QoS 1 re-sends walked a dict, whose order differs on
    MicroPython, so the device re-sent the newest message first (MQTT 3.1.1 §4.6 wants the
    original order)."""
    ops = [("ev", 1, 0), ("noack",), ("ev", 1, 0), ("down",), ("run", 136)]
    a, b = run_both("reporting", json.dumps(ops).encode())
    assert a == b
    dups = [ln for ln in a.decode().splitlines() if ln.split(" ")[3:4] == ["1"]]
    seqs = [json.loads(ln.split(" ", 4)[4])["seq"] for ln in dups if ln.endswith("}")]
    assert seqs == sorted(seqs), seqs
