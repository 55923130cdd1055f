"""Properties of the frame codec, the counter and the valve's integer conversions (CPython,
with independent oracles: the standard library's hmac, exact rational arithmetic)."""

import hashlib
import hmac
import shutil
import struct
import tempfile
from fractions import Fraction

from hypothesis import assume, given, settings, strategies as st

from gasguard import interlock_frame as F
from gasguard.espnow_link import FrameCounter
from gasguard.store import FileStore
from gasguard.validate import ConfigError
from gasguard.valve_cfg import valve_config
from simboard import PowerCutStore

keys = st.binary(min_size=32, max_size=32)
counters = st.integers(1, F.MAX_COUNTER)
TO_VALVE = (F.T_HEARTBEAT, F.T_CLOSE)
TO_DET = (F.T_STATUS, F.T_ACK)


@given(keys, counters, st.integers(0, F.MAX_COUNTER), st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_close_roundtrip_and_tag_matches_stdlib_hmac(key, ctr, echo, close_id, req):
    f = F.close(key, ctr, echo, close_id, req)
    assert len(f) == 10 + 5 + 16
    assert f[:10] == struct.pack("<BBII", 1, F.T_CLOSE, ctr, echo)
    assert f[-16:] == hmac.new(key, f[:-16], hashlib.sha256).digest()[:16]
    assert F.decode(key, f, TO_VALVE) == (F.T_CLOSE, ctr, echo, (close_id, req))


@given(keys, counters, st.integers(0, F.MAX_COUNTER), st.integers(0, 2**32 - 1),
       st.integers(0, 255), st.integers(0, 255))
def test_ack_roundtrip(key, ctr, echo, close_id, state, cause):
    f = F.ack(key, ctr, echo, close_id, state, cause)
    assert F.decode(key, f, TO_DET) == (F.T_ACK, ctr, echo, (close_id, state, cause))


@given(keys, st.binary(min_size=0, max_size=260), st.sampled_from([TO_VALVE, TO_DET]))
def test_random_bytes_never_decode(key, data, accept):
    try:
        F.decode(key, data, accept)
    except F.FrameError as e:
        assert e.reason in ("malformed", "version", "bad_tag", "unsupported")
    else:
        raise AssertionError("random bytes authenticated")


@given(keys, keys, counters)
def test_another_key_never_authenticates(k1, k2, ctr):
    assume(k1 != k2)
    f = F.heartbeat(k1, ctr, 0, 0)
    try:
        F.decode(k2, f, TO_VALVE)
    except F.FrameError as e:
        assert e.reason == "bad_tag"
    else:
        raise AssertionError


@settings(max_examples=30, deadline=None)
@given(block=st.integers(16, 64), takes=st.lists(st.integers(0, 150), min_size=1, max_size=5),
       cut=st.integers(0, 40))
def test_counter_never_repeats_across_reboots_and_power_cuts(block, takes, cut):
    """Boot, send some frames, lose power at any byte of a counter write, boot again..."""
    tmp = tempfile.mkdtemp(prefix="ilk-ctr-")
    try:
        key = bytes(32)
        used = set()
        for i, n in enumerate(takes):
            store = PowerCutStore(tmp, budget=cut if i == len(takes) - 1 else None)
            c = FrameCounter(store, key, block)
            if c.store_errors:
                continue  # the power died during the boot reservation: nothing was sent
            for _ in range(n):
                v = c.take()
                if c.store_errors:
                    break  # the power died inside this take(): the frame never left
                assert v not in used
                used.add(v)
            # a cut during the reservation write leaves the old record (atomic replace)
        c = FrameCounter(FileStore(tmp), key, block)
        assert c.take() > max(used, default=0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@given(zero=st.integers(0, 1000000), per_kpa=st.floats(1000.0, 1000000.0), uv=st.integers(0, 3200000))
def test_pressure_fixed_point_is_close_to_exact_and_stays_31_bit(zero, per_kpa, uv):
    c = valve_config({"pressure_uv_zero": zero, "pressure_uv_per_kpa": per_kpa})
    d = uv - zero
    prod = d * c["_p_gain"]
    assert abs(prod) < 2**30  # a small int on the ESP32
    got = prod >> c["_p_shift"]
    exact = Fraction(d) * 1000 / Fraction(per_kpa)
    # gain rounded to <= 1/2 of its last bit: relative error <= 0.5 / gain, plus the floor
    tol = abs(exact) * Fraction(1, 2 * c["_p_gain"]) + 1
    assert abs(got - exact) <= tol


@given(over=st.integers(3000, 20000), otol=st.integers(0, 5000), under=st.integers(200, 3000),
       utol=st.integers(0, 1000))
def test_pressure_bands_validate_consistently(over, otol, under, utol):
    cfg = {"over_pressure_pa": over, "over_pressure_tol_pa": otol,
           "under_pressure_pa": under, "under_pressure_tol_pa": utol}
    ok = under + utol < over - otol
    try:
        c = valve_config(cfg)
    except ConfigError:
        assert not ok
        return
    assert ok
    # the classification edge is inside the band, the backup edge outside it
    assert c["_p_under_backup"] <= c["_p_under_classify"] < c["_p_over_classify"] <= c["_p_over_backup"]
