"""Hypothesis: the Modbus RTU frame parser against a reference model, and the 3.5-character
timing rule (host_tests/portable/test_modbus_frames.py has the pinned cases, on every
interpreter)."""

from hypothesis import given, settings, strategies as st

from modbus_rig import ADDRESS, Line, crc_ok, with_crc

POLL_US = 500  # Line.idle polls every 500 us


def model_reply(frame):
    """What a Modbus slave at ADDRESS with TableRegs must answer (None: silence)."""
    if len(frame) < 4 or not crc_ok(frame):
        return None
    addr, fc, n = frame[0], frame[1], len(frame)
    if addr != ADDRESS:
        return None

    def exc(code):
        return with_crc(bytes([ADDRESS, fc | 0x80, code]))

    if fc in (3, 4):
        if n != 8:
            return exc(3)
        start = (frame[2] << 8) | frame[3]
        count = (frame[4] << 8) | frame[5]
        if not 1 <= count <= 125:
            return exc(3)
        if start + count - 1 > 9:
            return exc(2)
        body = bytearray([ADDRESS, fc, 2 * count])
        for a in range(start, start + count):
            v = 0x100 + a + (0x1000 if fc == 3 else 0)
            body += bytes([v >> 8, v & 0xFF])
        return with_crc(bytes(body))
    if fc == 6:
        if n != 8:
            return exc(3)
        a, v = (frame[2] << 8) | frame[3], (frame[4] << 8) | frame[5]
        if a != 200:
            return exc(2)
        return frame if 1 <= v <= 9 else exc(3)
    if fc == 16:
        count = (frame[4] << 8) | frame[5] if n >= 6 else 0
        if n < 9 or not 1 <= count <= 123 or frame[6] != 2 * count or n != 9 + 2 * count:
            return exc(3)
        start = (frame[2] << 8) | frame[3]
        for i in range(count):
            if start + i != 200:
                return exc(2)
            v = (frame[7 + 2 * i] << 8) | frame[8 + 2 * i]
            if not 1 <= v <= 9:
                return exc(3)
        return with_crc(frame[:6])
    if fc == 8:
        if n < 6:
            return exc(3)
        return frame if frame[2] == 0 and frame[3] == 0 else exc(1)
    if fc == 43:
        return "ident"  # shape checked in the portable tests
    return exc(1)


def model_writes(frame):
    """The writes a frame must carry out (values), for ADDRESS or broadcast."""
    if len(frame) < 4 or not crc_ok(frame) or frame[0] not in (0, ADDRESS):
        return []
    r = model_reply(with_crc(bytes([ADDRESS]) + frame[1:-2]))  # a broadcast runs like a request
    if r is None or r == "ident" or r[1] & 0x80 or frame[1] not in (6, 16):
        return []
    if frame[1] == 6:
        return [(frame[4] << 8) | frame[5]]
    return [(frame[7 + 2 * i] << 8) | frame[8 + 2 * i] for i in range((frame[4] << 8) | frame[5])]


addresses = st.sampled_from([0, ADDRESS, ADDRESS + 1, 247, 255])
functions = st.sampled_from([1, 3, 4, 5, 6, 8, 15, 16, 17, 43, 0x83, 0xFF])
bodies = st.binary(min_size=0, max_size=12)


@st.composite
def frames(draw):
    """Mostly well-formed requests (the interesting ones), some with a damaged CRC."""
    addr = draw(addresses)
    fc = draw(functions)
    if fc in (3, 4, 6, 8) and draw(st.booleans()):
        body = draw(st.binary(min_size=4, max_size=4))
        if fc in (3, 4) and draw(st.booleans()):
            body = bytes([0, draw(st.integers(0, 12)), 0, draw(st.integers(0, 12))])
        if fc == 6 and draw(st.booleans()):
            body = bytes([0, 200, 0, draw(st.integers(0, 12))])
    elif fc == 16 and draw(st.booleans()):
        count = draw(st.integers(0, 3))
        vals = draw(st.lists(st.integers(0, 12), min_size=count, max_size=count))
        body = bytes([0, draw(st.sampled_from([199, 200])), 0, count, 2 * count])
        body += b"".join(bytes([0, v]) for v in vals)
    else:
        body = draw(bodies)
    f = with_crc(bytes([addr, fc]) + body)
    if draw(st.integers(0, 5)) == 0:
        f = bytearray(f)
        i = draw(st.integers(0, len(f) - 1))
        f[i] ^= draw(st.integers(1, 255))
        f = bytes(f)
    if draw(st.integers(0, 7)) == 0:
        f = f[: draw(st.integers(0, len(f) - 1))]
    return f


@settings(max_examples=400)
@given(frames())
def test_every_frame_gets_the_models_answer_and_only_the_models_writes(f):
    r = Line()
    got = r.ask(f)
    want = model_reply(f)
    if want == "ident":
        assert crc_ok(got) and got[0] == ADDRESS and got[1] in (43, 43 | 0x80)
    else:
        assert got == (want or b""), (f.hex(), got.hex())
    assert r.regs.done == model_writes(f)
    assert r.de.value() == 0


@settings(max_examples=200)
@given(st.lists(frames(), min_size=1, max_size=6))
def test_a_sequence_of_frames_with_silences_is_answered_frame_by_frame(fs):
    r = Line()
    want_writes = []
    for f in fs:
        got = r.ask(f)
        want = model_reply(f)
        if want != "ident":
            assert got == (want or b""), (f.hex(), got.hex())
        want_writes += model_writes(f)
    assert r.regs.done == want_writes


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=9), st.booleans(),
                          st.integers(0, 4000)), min_size=1, max_size=10))
def test_frames_split_exactly_at_silences_of_3_5_characters(pieces):
    """Bytes arrive in pieces; after each piece a gap that is either clearly shorter than
    t3.5 or clearly longer (the poll granularity is POLL_US). The slave must see exactly
    the frames that the long gaps delimit: its answers equal the model's for those."""
    r = Line()
    frames_seen = []
    cur = b""
    for data, long_gap, extra in pieces:
        r.send(data)
        cur += data
        if long_gap:
            r.idle(r.t35 + POLL_US + extra)
            frames_seen.append(cur)
            cur = b""
        else:
            r.idle(max(0, min(extra, r.t35 - 2 * POLL_US)))
    r.idle(r.t35 + POLL_US)
    if cur:
        frames_seen.append(cur)
    want = b""
    for f in frames_seen:
        m = model_reply(f)
        if m == "ident":
            return  # an identification reply: shape covered elsewhere
        want += m or b""
    assert r.uart.take() == want


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=600))
def test_noise_never_gets_a_reply_unless_it_is_a_valid_frame_and_changes_nothing(noise):
    r = Line()
    got = r.ask(noise)
    want = model_reply(noise) if len(noise) <= 256 else None
    if want == "ident":
        return
    assert got == (want or b"")
    if len(noise) > 256:
        assert r.slave.overruns == 1 and r.regs.done == []


@settings(max_examples=15)
@given(st.lists(st.tuples(st.one_of(frames(), st.binary(min_size=0, max_size=40)),
                          st.sampled_from([0, 300, 1500, 2500, 5000])), min_size=1, max_size=25))
def test_the_slave_answers_byte_for_byte_the_same_on_cpython_and_micropython(steps):
    """Generated frames, noise and gaps through the slave on CPython, the pip MicroPython
    and the ESP32-like interpreter (run_both compares all three)."""
    from conftest import run_both

    stdin = "".join("%s %d\n" % (d.hex() or "-", g) for d, g in steps).encode()
    a, b = run_both("modbus", stdin)
    assert a == b
    assert len(a.decode().splitlines()) == len(steps) + 2
