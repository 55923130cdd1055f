"""SNTP client: non-blocking, validated replies, correct across the ticks wrap."""

import struct

from gasguard.reporter import WallTime
from gasguard.sntp import parse_reply
from ptest import raises
from reporting_fakes import FakeNet
from simboard import SimClock

T = 1790000000
NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01 in seconds


def _reply(nonce, unix_s, mode=4, stratum=2):
    b = bytearray(48)
    b[0] = (0 << 6) | (4 << 3) | mode
    b[1] = stratum
    b[24:32] = nonce
    struct.pack_into("!I", b, 40, unix_s + NTP_DELTA)
    return bytes(b)


def test_parse_reply_accepts_only_valid_answers_to_our_request():
    n = b"12345678"
    assert parse_reply(_reply(n, T), n) == T
    assert parse_reply(_reply(n, T), b"87654321") is None  # not our request
    assert parse_reply(_reply(n, T, mode=3), n) is None  # a client packet
    assert parse_reply(_reply(n, T, stratum=0), n) is None  # kiss-o'-death
    assert parse_reply(_reply(n, 1000), n) is None  # 1970: broken server
    assert parse_reply(b"short", n) is None


def test_sntp_exchange_is_non_blocking_and_sets_time():
    clock = SimClock()
    net = FakeNet()
    w = WallTime(clock, net, "10.0.0.1", rand=lambda n: 7)
    assert w.now() is None and not w.synced
    w.poll()
    s = net.last
    assert s.blocking is False and s.kind == net.SOCK_DGRAM
    (req, addr), = s.sent_to
    assert addr == ("10.0.0.1", 123) and req[0] == 0x1B and len(req) == 48
    clock.advance(100)
    w.poll()  # nothing yet: EAGAIN, no wait
    assert not w.synced
    s.feed(_reply(req[40:48], T))
    clock.advance(40)
    w.poll()
    assert w.synced and s.closed
    assert w.now() == T  # 140 ms round trip: +0 s
    clock.advance(2500)
    assert w.now() == T + 2


def test_no_reply_times_out_and_retries_later():
    clock = SimClock()
    net = FakeNet()
    w = WallTime(clock, net, "10.0.0.1", timeout_ms=1000, retry_ms=5000)
    w.poll()
    for _ in range(11):
        clock.advance(100)
        w.poll()
    assert w.failures == 1 and net.sockets[0].closed
    clock.advance(4000)
    w.poll()
    assert len(net.sockets) == 1
    clock.advance(1000)
    w.poll()
    assert len(net.sockets) == 2


def test_time_is_right_across_the_ticks_wrap_and_days_of_uptime():
    clock = SimClock()  # 10 min before the 2**30 wrap
    w = WallTime(clock)
    w.set(T)
    total = 0
    for _ in range(30 * 24):  # 30 days, polled hourly: longer than the 12.4-day ticks period
        clock.advance(3600000)
        total += 3600
        w.poll()
        assert w.now() == T + total


def test_dns_names_and_bad_times_are_refused():
    raises(ValueError, WallTime, SimClock(), FakeNet(), "pool.ntp.org")
    raises(ValueError, WallTime(SimClock()).set, 12)
