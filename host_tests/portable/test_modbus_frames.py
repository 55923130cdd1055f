"""Modbus RTU slave, frame level: CRC, timing, function codes, exceptions, hostile frames.
Runs on CPython and on both MicroPython interpreters (host_tests/portable)."""

from modbus_rig import ADDRESS, Line, crc_ok, request, with_crc
from gasguard.modbus_rtu import char_us, crc16, modbus_config, silence_us
from ptest import raises
from gasguard.validate import ConfigError


def words(reply):
    """The register values of a 03/04 reply."""
    n = reply[2]
    return [(reply[3 + 2 * i] << 8) | reply[4 + 2 * i] for i in range(n // 2)]


# ------------------------------------------------------------------ CRC and timing rule
def test_crc16_modbus_check_values():
    assert crc16(b"123456789", 9) == 0x4B37  # the catalogue check value of CRC-16/MODBUS
    f = bytes([0x01, 0x03, 0x00, 0x00, 0x00, 0x0A])
    assert crc16(f, 6) == 0xCDC5  # sent C5 CD: the example of the Modbus serial spec
    assert crc16(b"", 0) == 0xFFFF


def test_silence_is_3_5_characters_and_1750_us_above_19200():
    c = modbus_config({"baud": 9600})
    assert char_us(c) == 1146  # 11 bits
    assert silence_us(c) == 4011
    assert silence_us(modbus_config({"baud": 19200})) == 2006  # 3.5 x 573.0 us, rounded up
    for b in (38400, 57600, 115200):
        assert silence_us(modbus_config({"baud": b})) == 1750
    assert char_us(modbus_config({"baud": 9600, "parity": "none"})) == 1146  # 2 stop bits
    assert char_us(modbus_config({"baud": 9600, "parity": "none", "stop_bits": 1})) == 1042


def test_config_is_checked():
    for bad in ({"address": 0}, {"address": 248}, {"baud": 9601}, {"baud": True},
                {"parity": "mark"}, {"stop_bits": 3}, {"adress": 1}, {"enabled": 1}):
        raises(ConfigError, modbus_config, bad)
    raises(ConfigError, modbus_config, [1])
    c = modbus_config({})
    assert (c["address"], c["baud"], c["parity"], c["stop_bits"]) == (1, 9600, "even", 1)


def test_a_gap_shorter_than_the_silence_does_not_split_a_frame():
    r = Line()
    f = request(ADDRESS, 4, 0, 2)
    r.send(f[:3])
    r.idle(r.t35 - 500)  # under 3.5 characters
    rep = r.ask(f[3:])
    assert crc_ok(rep) and words(rep) == [0x100, 0x101]


def test_a_silence_inside_a_frame_splits_it_and_both_halves_are_dropped():
    r = Line()
    f = request(ADDRESS, 4, 0, 2)
    r.send(f[:3])
    r.idle(r.t35 + 500)
    assert r.ask(f[3:]) == b""
    assert r.slave.short_frames == 1 and r.slave.crc_errors == 1
    assert crc_ok(r.ask(f))  # the line recovers at once


# ------------------------------------------------------------------ function codes
def test_read_input_and_holding_registers():
    r = Line()
    rep = r.ask(request(ADDRESS, 4, 0, 3))
    assert rep[:3] == bytes([ADDRESS, 4, 6]) and crc_ok(rep)
    assert words(rep) == [0x100, 0x101, 0x102]
    rep = r.ask(request(ADDRESS, 3, 8, 2))
    assert words(rep) == [0x1108, 0x1109]


def test_read_quantity_and_address_limits():
    r = Line()
    assert r.ask(request(ADDRESS, 4, 0, 0)) == with_crc(bytes([ADDRESS, 0x84, 3]))
    assert r.ask(request(ADDRESS, 4, 0, 126)) == with_crc(bytes([ADDRESS, 0x84, 3]))
    assert r.ask(request(ADDRESS, 3, 9, 2)) == with_crc(bytes([ADDRESS, 0x83, 2]))
    assert r.ask(request(ADDRESS, 4, 0xFFFF, 1)) == with_crc(bytes([ADDRESS, 0x84, 2]))


def test_unknown_functions_answer_exception_01():
    r = Line()
    for fc in (1, 2, 5, 7, 11, 15, 17, 22, 23, 24, 0x41, 0x7F):
        rep = r.ask(request(ADDRESS, fc, 0, 1))
        assert rep == with_crc(bytes([ADDRESS, fc | 0x80, 1])), (fc, rep)
    assert r.regs.done == []


def test_write_single_register_echoes_and_refuses_what_the_map_refuses():
    r = Line()
    f = request(ADDRESS, 6, 200, 3)
    assert r.ask(f) == f
    assert r.ask(request(ADDRESS, 6, 1, 3)) == with_crc(bytes([ADDRESS, 0x86, 2]))
    assert r.ask(request(ADDRESS, 6, 200, 77)) == with_crc(bytes([ADDRESS, 0x86, 3]))
    assert r.regs.done == [3]


def test_write_multiple_checks_every_register_before_writing_any():
    r = Line()
    ok = with_crc(bytes([ADDRESS, 16, 0, 200, 0, 1, 2, 0, 4]))
    assert r.ask(ok) == request(ADDRESS, 16, 200, 1)
    bad_value = with_crc(bytes([ADDRESS, 16, 0, 199, 0, 2, 4, 0, 5, 0, 6]))
    assert r.ask(bad_value) == with_crc(bytes([ADDRESS, 0x90, 2]))
    wrong_count = with_crc(bytes([ADDRESS, 16, 0, 200, 0, 1, 4, 0, 4]))
    assert r.ask(wrong_count) == with_crc(bytes([ADDRESS, 0x90, 3]))
    short = with_crc(bytes([ADDRESS, 16, 0, 200, 0, 1, 2, 0]))
    assert r.ask(short) == with_crc(bytes([ADDRESS, 0x90, 3]))
    assert r.regs.done == [4]


def test_wrong_lengths_answer_exception_03():
    r = Line()
    for body in (bytes([ADDRESS, 4, 0, 0, 0, 1, 0]), bytes([ADDRESS, 3, 0, 0, 0]),
                 bytes([ADDRESS, 6, 0, 200, 0, 1, 9])):
        rep = r.ask(with_crc(body))
        assert rep == with_crc(bytes([ADDRESS, body[1] | 0x80, 3])), rep
    assert r.regs.done == []


def test_diagnostics_echo_only_sub_function_0():
    r = Line()
    f = request(ADDRESS, 8, 0, 0xA537)
    assert r.ask(f) == f
    assert r.ask(request(ADDRESS, 8, 1, 0)) == with_crc(bytes([ADDRESS, 0x88, 1]))
    assert r.ask(request(ADDRESS, 8, 0x0A, 0)) == with_crc(bytes([ADDRESS, 0x88, 1]))


def _objects(rep):
    out = {}
    p = 8
    for _ in range(rep[7]):
        out[rep[p]] = bytes(rep[p + 2: p + 2 + rep[p + 1]])
        p += 2 + rep[p + 1]
    return out


def test_read_device_identification():
    r = Line()
    rep = r.ask(with_crc(bytes([ADDRESS, 43, 14, 1, 0])))
    assert crc_ok(rep) and rep[:5] == bytes([ADDRESS, 43, 14, 1, 0x83])
    assert _objects(rep) == {0: b"gasguard", 1: b"GG-T", 2: b"0.1.0"}
    rep = r.ask(with_crc(bytes([ADDRESS, 43, 14, 3, 0])))
    assert _objects(rep)[0x80] == b"88.1.2/T1" and _objects(rep)[4] == b"test device"
    rep = r.ask(with_crc(bytes([ADDRESS, 43, 14, 4, 0x80])))
    assert _objects(rep) == {0x80: b"88.1.2/T1"}
    assert r.ask(with_crc(bytes([ADDRESS, 43, 14, 4, 0x55]))) == with_crc(bytes([ADDRESS, 0xAB, 2]))
    assert r.ask(with_crc(bytes([ADDRESS, 43, 14, 5, 0]))) == with_crc(bytes([ADDRESS, 0xAB, 3]))
    assert r.ask(with_crc(bytes([ADDRESS, 43, 13, 1, 0]))) == with_crc(bytes([ADDRESS, 0xAB, 1]))


def test_a_failing_device_answers_exception_04():
    r = Line()
    r.regs.raise_on = 9
    assert r.ask(request(ADDRESS, 6, 200, 9)) == with_crc(bytes([ADDRESS, 0x86, 4]))
    assert crc_ok(r.ask(request(ADDRESS, 4, 0, 1)))  # and keeps serving


def test_driver_enable_is_on_only_while_the_reply_goes_out():
    r = Line()
    assert (r.de.level, r.de.sets, r.de.drives) == (0, 1, 0)  # released at start-up
    r.ask(request(ADDRESS, 4, 0, 1))
    assert (r.de.level, r.de.sets, r.de.drives) == (0, 3, 1)  # on for the reply, then off
    r.ask(request(ADDRESS + 1, 4, 0, 1))
    r.ask(request(0, 6, 200, 1))
    assert (r.de.level, r.de.drives) == (0, 1)  # never driven for a frame it does not answer


# ------------------------------------------------------------------ broadcasts, addresses
def test_broadcast_writes_run_without_a_reply():
    r = Line()
    assert r.ask(request(0, 6, 200, 2)) == b""
    assert r.ask(with_crc(bytes([0, 16, 0, 200, 0, 1, 2, 0, 5]))) == b""
    assert r.regs.done == [2, 5]
    for f in (request(0, 4, 0, 1), request(0, 8, 0, 1), request(0, 6, 1, 1), request(0, 17)):
        assert r.ask(f) == b""
    assert r.regs.done == [2, 5] and r.slave.broadcasts == 6


def test_frames_for_other_addresses_are_ignored():
    r = Line()
    for a in (1, 6, 8, 247, 248, 255):
        assert r.ask(request(a, 6, 200, 1)) == b""
        assert r.ask(request(a, 4, 0, 1)) == b""
    assert r.regs.done == [] and r.slave.other_address == 12
    assert r.slave.replies == 0


# ------------------------------------------------------------------ hostile frames
def test_bad_crc_truncated_and_runt_frames_get_no_reply():
    r = Line()
    f = request(ADDRESS, 6, 200, 1)
    bad = bytearray(f)
    bad[-1] ^= 0x40
    flipped = bytearray(f)
    flipped[3] ^= 0x01
    for junk in (bytes(bad), bytes(flipped), f[:-1], f[:5], f[:3], f[:1], b"\x00" * 4):
        assert r.ask(junk) == b"", junk
    assert r.regs.done == [] and r.slave.replies == 0
    assert r.slave.crc_errors == 5 and r.slave.short_frames == 2


def test_noise_glued_to_a_frame_drops_it_and_the_next_clean_frame_is_answered():
    r = Line()
    f = request(ADDRESS, 6, 200, 1)
    assert r.ask(b"\xff\x13" + f) == b""
    assert r.ask(f + b"\x55") == b""
    assert r.regs.done == []
    assert r.ask(f) == f and r.regs.done == [1]


def test_a_flood_without_silence_is_dropped_whole_then_the_line_recovers():
    r = Line()
    f = request(ADDRESS, 6, 200, 1)
    for _ in range(40):  # 320 bytes back to back, every one of them a valid request
        r.send(f)
        r.idle(200)
    r.idle(r.t35 + 1000)
    assert r.uart.take() == b"" and r.regs.done == []
    assert r.slave.overruns == 1
    assert r.ask(request(ADDRESS, 4, 0, 1))[:2] == bytes([ADDRESS, 4])


def test_two_requests_back_to_back_without_silence_are_one_bad_frame():
    r = Line()
    assert r.ask(request(ADDRESS, 6, 200, 1) + request(ADDRESS, 6, 200, 2)) == b""
    assert r.regs.done == []


def test_a_request_that_arrives_while_the_reply_is_sent_is_not_lost_after_it():
    r = Line()
    rep = r.ask(request(ADDRESS, 4, 0, 1))
    assert crc_ok(rep)
    rep = r.ask(request(ADDRESS, 4, 1, 1))
    assert words(rep) == [0x101]


def test_a_failing_uart_write_does_not_make_the_slave_answer_the_same_frame_again():
    r = Line()
    real = r.uart.write
    fails = []

    def broken(buf, n=None):
        fails.append(n)
        raise OSError(5)

    r.uart.write = broken
    r.send(request(ADDRESS, 4, 0, 1))
    try:
        r.idle(r.t35 + 1000)
    except OSError:
        pass  # the app counts a poller's exception; the next poll goes on
    r.idle(r.t35 * 3)
    assert fails == [7, 5]  # the reply, then the exception 04 reply: each tried once
    assert r.de.level == 0  # the line is released
    r.uart.write = real
    assert crc_ok(r.ask(request(ADDRESS, 4, 0, 1)))
