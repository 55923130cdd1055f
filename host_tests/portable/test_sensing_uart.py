"""ZE07-CO UART frames: checksum, parsing with resync, channel faults."""

import sys

from gasguard.sensor_uart import (
    CMD_ACTIVE_MODE, CMD_QA_MODE, CMD_READ, UartChannel, ZE07Parser, checksum, frame_ok,
    make_frame,
)
from gasguard.validate import ConfigError
from ptest import raises
from simboard import SimClock, SimConsole

GOOD = bytes((0xFF, 0x04, 0x03, 0x01, 0x01, 0x5E, 0x13, 0x88, 0xFE))  # 35.0 ppm


def test_checksum_worked_examples():
    assert frame_ok(GOOD)
    assert checksum(GOOD) == 0xFE
    wrong = bytes((0xFF, 0x04, 0x03, 0x01, 0x00, 0x25, 0x13, 0x88, 0x25))
    assert not frame_ok(wrong)
    assert checksum(wrong) == 0x38
    for cmd in (CMD_QA_MODE, CMD_ACTIVE_MODE, CMD_READ):
        assert frame_ok(cmd)
    assert make_frame(350) == GOOD


def test_parser_values_and_resync():
    p = ZE07Parser()
    assert p.feed(GOOD) == 1 and p.value_x10 == 350 and p.full_scale_x10 == 5000
    # garbage, a truncated frame, a corrupt one, then a good one
    junk = b"\x00\x12" + GOOD[:5] + make_frame(10)[:8] + b"\x00" + make_frame(999)
    assert p.feed(junk) == 1
    assert p.value_x10 == 999
    assert p.errors == 0


def test_parser_counts_bad_frames():
    p = ZE07Parser()
    bad = bytearray(GOOD)
    bad[5] ^= 1
    p.feed(bytes(bad))
    p.feed(bytes(bad))
    assert p.errors == 2 and p.value_x10 == -1
    p.feed(GOOD)
    assert p.errors == 0


def _chan(cfg=None):
    u = SimConsole()
    c = SimClock()
    return UartChannel(u, c, cfg or {"warmup_s": 0}), u, c


def test_channel_reads_frames_and_reports_comm_loss():
    ch, u, c = _chan()
    u.feed(make_frame(700))
    c.advance(1000)
    ch.sample()
    assert ch.ppm_x10 == 700 and ch.fault is None and ch.gas == "co"
    for _ in range(4):
        c.advance(1000)
        ch.sample()
    assert ch.fault is None
    c.advance(1000)
    ch.sample()
    assert ch.fault == "sensor_comm" and ch.ppm_x10 == 0 and not ch.reading_valid
    u.feed(make_frame(20))
    c.advance(1000)
    ch.sample()
    assert ch.fault is None and ch.ppm_x10 == 20


def test_channel_checksum_errors_in_a_row():
    ch, u, c = _chan()
    bad = bytearray(make_frame(100))
    bad[8] ^= 0xFF
    for i in range(3):
        u.feed(bytes(bad))
        c.advance(1000)
        ch.sample()
    assert ch.fault == "sensor_comm"


def test_channel_over_range_and_eol():
    ch, u, c = _chan({"warmup_s": 0, "range_ppm": 500})
    u.feed(make_frame(5000))
    c.advance(1000)
    ch.sample()
    assert ch.over_range and ch.ppm_x10 == 5000
    ch.set_age_days(2000)
    assert ch.fault == "end_of_life"
    raises(ConfigError, UartChannel, u, c, {"timeout_s": 0})


def test_channel_steady_state_allocation():
    if sys.implementation.name != "micropython":
        return
    import gc

    class U:
        def __init__(self):
            self.frame = make_frame(123)
            self.pending = False

        def readinto(self, buf):
            if not self.pending:
                return None
            self.pending = False
            buf[0:9] = self.frame
            return 9

    u = U()
    c = SimClock()
    ch = UartChannel(u, c, {"warmup_s": 0})
    for _ in range(5):
        u.pending = True
        c.advance(1000)
        ch.sample()
    gc.collect()
    gc.disable()
    try:
        b = gc.mem_alloc()
        i = 0
        while i < 200:
            u.pending = True
            c.advance(1000)
            ch.sample()
            i += 1
        grown = gc.mem_alloc() - b
    finally:
        gc.enable()
    assert ch.ppm_x10 == 123
    assert grown == 0, grown
