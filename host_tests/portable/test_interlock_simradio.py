"""The simulated ESP-NOW air on both interpreters: loss, duplicates, delay, reorder, strictness."""

from ptest import raises

from simboard import MisuseError, SimClock
from simradio import SimAir

A = b"\x02\x00\x00\x00\x00\x0a"
B = b"\x02\x00\x00\x00\x00\x0b"
C = b"\x02\x00\x00\x00\x00\x0c"


def _drain(r):
    out = []
    while True:
        got = r.poll()
        if got is None:
            return out
        out.append(got)


def _trace(seed):
    clock = SimClock()
    air = SimAir(clock, seed=seed, loss_pct=30, dup_pct=10, delay_ms=(0, 30), reorder_pct=20)
    a, b = air.radio(A), air.radio(B)
    got = []
    for i in range(300):
        a.send(B, bytes((i & 0xFF, i >> 8)))
        clock.advance(5)
        for mac, data in _drain(b):
            got.append(data[0] | data[1] << 8)
    clock.advance(1000)
    got += [d[0] | d[1] << 8 for _m, d in _drain(b)]
    return got, air.stats


def test_lossy_air_is_deterministic_per_seed_and_roughly_as_configured():
    g1, s1 = _trace(5)
    g2, _ = _trace(5)
    g3, _ = _trace(6)
    assert g1 == g2 and g1 != g3
    assert 60 <= s1["dropped"] <= 120  # 30 % of 300
    assert s1["duplicated"] >= 10
    assert len(g1) == 300 - s1["dropped"] + s1["duplicated"]
    assert g1 != sorted(g1)  # some frames overtook others


def test_perfect_air_delivers_in_order_after_the_delay():
    clock = SimClock()
    air = SimAir(clock, delay_ms=(10, 10))
    a, b, c = air.radio(A), air.radio(B), air.radio(C)
    assert a.send(B, b"x1") and a.send(B, b"x2")
    assert b.poll() is None  # not yet: 10 ms on the air
    clock.advance(10)
    assert b.poll() == (A, b"x1") and b.poll() == (A, b"x2") and b.poll() is None
    assert c.poll() is None  # unicast is not heard by others
    a.send(b"\xff" * 6, b"all")
    clock.advance(10)
    assert b.poll() == (A, b"all") and c.poll() == (A, b"all")


def test_inject_and_log():
    clock = SimClock()
    air = SimAir(clock)
    air.keep_log = True
    b = air.radio(B)
    air.inject(C, B, b"forged")
    assert b.poll() == (C, b"forged")
    a = air.radio(A)
    a.send(B, b"rec")
    assert air.log[-1] == (A, B, b"rec")


def test_strict_like_the_real_api():
    clock = SimClock()
    air = SimAir(clock)
    a = air.radio(A)
    raises(MisuseError, a.send, b"\x01", b"x")
    raises(MisuseError, a.send, B, "text")
    raises(MisuseError, a.send, B, b"")
    raises(MisuseError, a.send, B, bytes(251))
    raises(MisuseError, air.radio, A)


def test_rx_queue_overflow_drops():
    clock = SimClock()
    air = SimAir(clock, rx_queue=4)
    a, b = air.radio(A), air.radio(B)
    for i in range(10):
        a.send(B, bytes((i,)))
    assert len(_drain(b)) == 4 and air.stats["overflow"] == 6
