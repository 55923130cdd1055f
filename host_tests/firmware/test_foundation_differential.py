"""The same generated input through the same logic on CPython and MicroPython: same bytes out."""

import json

from hypothesis import given, settings, strategies as st

from conftest import run_both

PERIOD = 1 << 30

request = st.fixed_dictionaries({
    "key": st.binary(max_size=100).map(bytes.hex),
    "msg": st.binary(max_size=300).map(bytes.hex),
    "payload": st.binary(max_size=200).map(bytes.hex),
    "v": st.integers(0, 255),
    "t": st.integers(0, PERIOD - 1),
    "d": st.integers(-(PERIOD // 2) + 1, PERIOD // 2 - 1),
})


@settings(max_examples=10, deadline=None)
@given(st.lists(request, min_size=1, max_size=20))
def test_foundation_identical_on_both_interpreters(reqs):
    stdin = "".join(json.dumps(r) + "\n" for r in reqs).encode()
    a, b = run_both("foundation", stdin)
    assert a == b
    assert len(a.splitlines()) == len(reqs)
    for r, line in zip(reqs, a.decode().splitlines()):
        assert int(line.split()[3]) == r["d"]
