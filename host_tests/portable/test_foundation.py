"""Foundation pieces on both interpreters: HMAC, ticks, records, the store, the sim board."""

from ptest import allocated, raises, tmpdir

from gasguard import hmac256, record, ticks
from gasguard.store import FileStore
from gasguard.validate import ConfigError, need_int, need_num, need_choice, reject_unknown
from simboard import (MemStore, MisuseError, PowerCutStore, SimAnalogIn, SimClock, SimConsole,
                      SimPin, Xorshift32)


def test_hmac_rfc4231_case_1():
    tag = hmac256.digest(b"\x0b" * 20, b"Hi There")
    want = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert tag == bytes.fromhex(want)


def test_hmac_rfc4231_case_6_long_key():
    key = b"\xaa" * 131
    tag = hmac256.digest(key, b"Test Using Larger Than Block-Size Key - Hash Key First")
    want = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    assert tag == bytes.fromhex(want)


def test_hmac_equal():
    assert hmac256.equal(b"abc", b"abc")
    assert not hmac256.equal(b"abc", b"abd")
    assert not hmac256.equal(b"abc", b"ab")


def test_ticks_diff_across_wrap():
    p = ticks.ESP32_TICKS_PERIOD
    assert ticks.diff(5, p - 5) == 10
    assert ticks.diff(p - 5, 5) == -10
    assert ticks.add(p - 1, 2) == 1
    assert ticks.diff(ticks.add(123, 1000), 123) == 1000


def test_ticks_arithmetic_matches_the_modulo_definition_at_the_edges():
    # every pair of edge values: the wrap, the half period, zero, both signs of delta
    half = 1 << 29
    top = (1 << 30) - 1
    vals = (0, 1, 2, half - 1, half, half + 1, top - 1, top)
    for a in vals:
        for b in vals:
            want = (a - b) % (top + 1)
            if want >= half:
                want -= top + 1
            assert ticks.diff(a, b) == want, (a, b)
            assert ticks.add(a, b) == (a + b) % (top + 1), (a, b)
            assert ticks.add(a, -b) == (a - b) % (top + 1), (a, -b)


def test_ticks_and_sim_clock_allocate_nothing_across_the_wrap():
    # on the ESP32 an int beyond +-2**30 is a heap object: 1 << 30 itself is one
    c = SimClock()
    top = (1 << 30) - 1
    t = c.ticks_ms()

    def turns():
        i = 0
        while i < 1000:
            c.advance(1000)  # crosses the wrap 600 s in
            c.ticks_diff(c.ticks_ms(), t)
            c.ticks_add(top, 5)
            ticks.diff(3, top)
            i += 1

    assert allocated(turns) == 0


def test_xorshift32_is_the_32_bit_reference_sequence():
    def reference(x, n):
        out = []
        for _ in range(n):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            out.append(x)
        return out

    for seed in (1, 0x9E3779B9, 0xFFFFFFFF, 0x80000000, 2463534242):
        r = Xorshift32(seed)
        want = reference(seed, 200)
        assert [r.next() for _ in range(200)] == want, seed
        r = Xorshift32(seed)
        got = [r.below(n) for n in (7, 1000, 4001, 1000000, 1 << 22)]
        assert got == [w % n for w, n in zip(want, (7, 1000, 4001, 1000000, 1 << 22))], seed


def test_xorshift32_step_allocates_nothing():
    r = Xorshift32(0x12345678)

    def reads():
        i = 0
        while i < 1000:
            r.step()
            r.below(1000000)
            i += 1

    assert allocated(reads) == 0


def test_sim_clock_wraps_like_esp32():
    c = SimClock()
    t0 = c.ticks_ms()
    c.advance(700000)  # crosses the 2**30 wrap (the clock starts 600 s before it)
    t1 = c.ticks_ms()
    assert t1 < t0
    assert c.ticks_diff(t1, t0) == 700000
    assert c.elapsed_ms == 700000
    raises(MisuseError, c.advance, -1)


def test_record_round_trip_and_corruption():
    r = record.seal(b"hello", version=3)
    assert record.unseal(r) == b"hello"
    assert record.unseal(r, version=3) == b"hello"
    raises(record.RecordError, record.unseal, r, 2)
    for i in range(len(r)):
        bad = bytearray(r)
        bad[i] ^= 0x01
        raises(record.RecordError, record.unseal, bytes(bad))
    raises(record.RecordError, record.unseal, r[:-1])
    raises(record.RecordError, record.unseal, None)


def test_record_scan_stops_at_torn_tail():
    log = record.seal(b"a") + record.seal(b"bb") + record.seal(b"ccc")
    for cut in range(len(log) + 1):
        got, good = record.scan(log[:cut])
        assert got == [b"a", b"bb", b"ccc"][: len(got)]
        assert good <= cut
    assert record.scan(log) == ([b"a", b"bb", b"ccc"], len(log))


def test_store_atomic_write_and_names():
    s = FileStore(tmpdir("store"))
    assert s.read("x") is None
    s.write("x", b"1")
    s.write("x", b"22")
    assert s.read("x") == b"22"
    s.append("log", b"ab")
    s.append("log", b"c")
    assert s.read("log") == b"abc"
    assert s.size("log") == 3
    assert s.names() == ["log", "x"]
    s.remove("x")
    assert s.read("x") is None
    raises(ValueError, s.read, "../etc")


def test_power_cut_during_write_keeps_old_content():
    root = tmpdir("cut")
    s = PowerCutStore(root)
    s.write("cfg", b"old-content")
    s.budget = 3
    raises(OSError, s.write, "cfg", b"new-content")
    assert FileStore(root).read("cfg") == b"old-content"


def test_power_cut_during_append_leaves_scannable_log():
    root = tmpdir("cutlog")
    s = PowerCutStore(root)
    s.append("log", record.seal(b"first"))
    s.budget = 6
    raises(OSError, s.append, "log", record.seal(b"second"))
    got, good = record.scan(FileStore(root).read("log"))
    assert got == [b"first"]


def test_sim_pins_are_strict():
    out = SimPin("relay", SimPin.OUT)
    out.on()
    assert out.value() == 1
    inp = SimPin("button", SimPin.IN)
    raises(MisuseError, inp.value, 1)
    inp.set_input(1)
    assert inp.value() == 1
    raises(MisuseError, out.set_input, 1)


def test_sim_pin_history_is_a_bounded_ring():
    c = SimClock()
    out = SimPin("buzzer", SimPin.OUT)
    out.clock = c
    for i in range(1000):
        c.advance(10)
        out.value((i & 1) == 0)
    assert out.changes == 1000
    h = out.history
    assert len(h) == SimPin.HISTORY
    assert h[-1] == (10000, 0) and h[0] == (10000 - 10 * (SimPin.HISTORY - 1), 1)

    def turns():
        i = 0
        while i < 1000:
            c.advance(10)
            out.value(i & 1)
            out.value()
            out(0)
            i += 1

    assert allocated(turns) == 0


def test_sim_adc_clips_and_rejects_arguments():
    a = SimAnalogIn(5000000, full_scale_uv=3100000)
    assert a.read_uv() == 3100000
    a.source = -5
    assert a.read_uv() == 0
    raises(TypeError, a.read_uv, 1)  # as machine.ADC


def test_sim_console_is_bytes_only():
    c = SimConsole()
    assert c.read(10) is None
    c.feed("abc")
    assert c.read(2) == b"ab"
    assert c.read() == b"c"
    raises(MisuseError, c.write, "text")
    c.write(b"ok\n")
    assert c.take_output() == b"ok\n"


def test_config_checks_name_the_key():
    e = raises(ConfigError, need_int, {"delay_s": 99}, "delay_s", 15, 60)
    assert "delay_s" in str(e) and "15..60" in str(e)
    raises(ConfigError, need_int, {"x": True}, "x", 0, 1)
    raises(ConfigError, need_int, {"x": 1.5}, "x", 0, 2)
    assert need_num({"x": 1.5}, "x", 0, 2) == 1.5
    raises(ConfigError, need_choice, {"p": "xx"}, "p", ("cn", "en"))
    raises(ConfigError, reject_unknown, {"typo": 1}, ("a",), "alarm")


def test_mem_store_keeps_the_file_store_contract():
    for s in (MemStore(), FileStore(tmpdir("contract"))):
        assert s.read("a") is None and s.size("a") == 0
        s.write("a", b"12")
        s.append("a", b"3")
        s.append("b", b"x")
        assert s.read("a") == b"123" and s.size("a") == 3 and s.names() == ["a", "b"]
        s.remove("a")
        assert s.read("a") is None and s.names() == ["b"]


def test_flash_config_is_empty_unless_a_json_object():
    from gasguard.flash_config import flash_config

    d = tmpdir("flashcfg")
    assert flash_config(d + "/missing.json") == {}
    for text, want in (("[1, 2]", {}), ("not json", {}), ('{"link": {"channel": 6}}', {"link": {"channel": 6}})):
        with open(d + "/c.json", "w") as f:
            f.write(text)
        assert flash_config(d + "/c.json") == want
