"""Calibration: plausibility checks, zero/span effect, sealed record round trip, corruption."""

from gasguard import cal_math, calibration, sensors
from gasguard.calibration import CalibrationError, CalibrationRecord, ChannelCal
from ptest import raises, tmpdir
from gasguard.store import FileStore

MQ4 = {"model": "mq4"}
CO = {"model": "ec_co"}


def _truth_mq4(r0):
    return sensors.from_config({"model": "mq4", "r0_ohm": r0})


def test_zero_and_span_bring_a_deviating_mos_sensor_back():
    truth = _truth_mq4(14000)  # a sensor 40 % off nominal R0
    m = sensors.from_config(MQ4)
    uv = truth.uv(50000)
    off = m.ppm_x10(uv)
    assert abs(off - 50000) > 10000  # uncalibrated reading is far off
    rec = CalibrationRecord().with_zero(MQ4, truth.uv(0), 20260315, "Li Wei")
    rec = rec.with_span(MQ4, uv, 50000, 20260315, "Li Wei")
    calibration.apply(m, rec.get("ch4"))
    assert m.ppm_x10(truth.uv(0)) == 0
    assert abs(m.ppm_x10(uv) - 50000) <= 100
    assert abs(m.ppm_x10(truth.uv(10000)) - 10000) <= 300


def test_co_zero_and_span():
    truth = sensors.from_config({"model": "ec_co", "zero_uv": 420000, "uv_per_ppm": 2600.0})
    m = sensors.from_config(CO)
    rec = CalibrationRecord().with_zero(CO, truth.uv(0), 20260315, "op")
    rec = rec.with_span(CO, truth.uv(1000), 1000, 20260315, "op")
    calibration.apply(m, rec.get("co"))
    for p in (0, 300, 1000, 1500, 4000):
        assert abs(m.ppm_x10(truth.uv(p)) - p) <= 2 + p // 500


def test_compute_span_reports_gain():
    m = sensors.from_config(CO)
    g = calibration.compute_span(m, 400000, 400000 + 100 * 1600, 1000)
    assert abs(g - 2.0) < 0.01
    # the trial does not change the model
    assert m.s_cal == m.s_nominal and m.zero_cal == 400000


def test_absurd_values_are_refused_with_a_reason():
    m = sensors.from_config(MQ4)
    lo, hi = cal_math.zero_window(m)
    e = raises(CalibrationError, calibration.compute_zero, m, hi + 1)
    assert "clean-air window" in str(e)
    raises(CalibrationError, calibration.compute_zero, m, lo - 1)
    z = m.clean_air_uv
    e = raises(CalibrationError, calibration.compute_span, m, z, z - 1000, 50000)
    assert "not above" in str(e) or "zero" in str(e)
    e = raises(CalibrationError, calibration.compute_span, m, z, m.uv(50000), 200000)
    assert "outside" in str(e)  # span gas beyond the range
    e = raises(CalibrationError, calibration.compute_span, m, z, m.uv(300), 50000)
    assert "gain" in str(e)  # reads 30 ppm in 5000 ppm gas: gain 160
    c = sensors.from_config(CO)
    e = raises(CalibrationError, calibration.compute_span, c, 400000, 400000 + 100 * 320, 1000)
    assert "gain" in str(e)
    raises(CalibrationError, calibration.compute_zero, c, 100000)
    raises(CalibrationError, calibration.compute_span, c, 400000, 390000, 1000)


def test_refused_change_changes_nothing():
    rec = CalibrationRecord().with_zero(MQ4, 780000, 20260101, "a")
    before = rec.get("ch4").as_dict()
    raises(CalibrationError, rec.with_span, MQ4, 700000, 50000, 20260101, "a")
    raises(CalibrationError, rec.with_zero, MQ4, 10, 20260101, "a")
    raises(CalibrationError, rec.with_zero, MQ4, 780000, 20261301, "a")
    raises(CalibrationError, rec.with_zero, MQ4, 780000, 20260101, "")
    assert rec.get("ch4").as_dict() == before
    raises(CalibrationError, CalibrationRecord().with_span, MQ4, 1500000, 50000, 20260101, "a")


def test_new_zero_drops_the_old_span():
    m = sensors.from_config(MQ4)
    rec = CalibrationRecord().with_zero(MQ4, 780000, 20260101, "a")
    rec = rec.with_span(MQ4, m.uv(50000), 50000, 20260101, "a")
    assert rec.get("ch4").span_uv is not None
    rec = rec.with_zero(MQ4, 790000, 20260102, "b")
    assert rec.get("ch4").span_uv is None and rec.get("ch4").zero_uv == 790000


def test_record_round_trip_through_the_store():
    d = tmpdir("cal")
    st = FileStore(d)
    assert calibration.load(st).problem == "missing"
    m = sensors.from_config(MQ4)
    rec = CalibrationRecord().with_zero(MQ4, 780000, 20260101, "王工")
    rec = rec.with_span(MQ4, m.uv(50000), 50000, 20260102, "王工")
    rec = rec.with_zero(CO, 401000, 20260103, "Zhang")
    calibration.save(st, rec)
    back = calibration.load(st)
    assert back.problem is None
    assert back.gases() == ["ch4", "co"]
    assert back.get("ch4") == rec.get("ch4")
    assert back.get("co").as_dict() == {
        "gas": "co", "model": "ec_co", "zero_uv": 401000, "span_uv": None,
        "span_ppm_x10": None, "date": 20260103, "operator": "Zhang"}
    assert back.encode() == rec.encode()
    only_co = back.without("ch4")
    assert only_co.gases() == ["co"] and back.gases() == ["ch4", "co"]


def test_corrupt_record_is_reported_not_raised():
    d = tmpdir("calbad")
    st = FileStore(d)
    rec = CalibrationRecord().with_zero(CO, 401000, 20260103, "Zhang")
    raw = bytearray(rec.encode())
    raw[8] ^= 0x40
    st.write("calibration", bytes(raw))
    r = calibration.load(st)
    assert r.problem.startswith("corrupt")
    assert r.get("co") is None
    st.write("calibration", rec.encode()[:-1])
    assert calibration.load(st).problem.startswith("corrupt")
    raises(CalibrationError, calibration.save, st, r)


def test_malformed_payload_with_a_good_crc_is_refused():
    from gasguard import record

    for payload in (b"", b"\x01", b"\x01\x03ch4\x03mq4", b"\x00\x00",
                    b"\x01\x03ch4\x03mq4" + b"\x00" * 16 + b"\x01a"):
        e = raises(CalibrationError, CalibrationRecord.decode, record.seal(payload, 1))
        assert str(e)
    raises(CalibrationError, CalibrationRecord.decode, record.seal(b"\x00", 2))


def test_apply_refuses_mismatch_and_leaves_nominal():
    m = sensors.from_config(MQ4)
    nominal = cal_math.state(m)
    good = ChannelCal("ch4", "mq4", 900000, None, None, 20260101, "x")
    calibration.apply(m, good)
    assert cal_math.state(m) != nominal
    raises(CalibrationError, calibration.apply, m, ChannelCal("co", "ec_co", 400000))
    assert cal_math.state(m) == nominal
    raises(CalibrationError, calibration.apply, m, None)


def test_channel_cal_checks_its_fields():
    raises(CalibrationError, ChannelCal, "h2", "mq4", 1)
    raises(CalibrationError, ChannelCal, "ch4", "mq4", -1)
    raises(CalibrationError, ChannelCal, "ch4", "mq4", 1, 5, None)
    raises(CalibrationError, ChannelCal, "ch4", "mq4", 1, None, None, 20250230)
    raises(CalibrationError, ChannelCal, "ch4", "mq4", 1, None, None, 20250101, "x" * 33)
    raises(CalibrationError, ChannelCal, "ch4", "mq4", 1, None, None, 20250101, "a\nb")
    assert isinstance(CalibrationError("x"), ValueError)
