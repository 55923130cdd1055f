"""The MQTT client against a strict fake network: never blocks, recovers, retransmits."""

import struct

from gasguard import mqtt
from gasguard.mqtt import MQTTClient
from gasguard.validate import ConfigError
from ptest import raises
from reporting_fakes import (
    CONNACK_OK, FakeNet, puback, publish_fields, run_until_up,
)
from simboard import MisuseError, SimClock


def _client(mode="ok", **cfg):
    clock = SimClock()
    net = FakeNet(mode)
    c = {"host": "10.0.0.5", "port": 1883, "client_id": "dev1", "keepalive_s": 30}
    c.update(cfg)
    cl = MQTTClient(clock, net, c, will=("gg/dev1/state", b"offline", 1, True), rand=lambda n: n - 1)
    return cl, clock, net


def test_connect_sends_connect_with_will_and_nodelay_on_nonblocking_socket():
    cl, clock, net = _client()
    first, body = run_until_up(cl, clock)
    s = net.last
    assert s.blocking is False
    assert (6, 1, 1) in s.opts  # TCP_NODELAY
    assert body[:7] == b"\x00\x04MQTT\x04"
    flags = body[7]
    assert flags & 0x02  # clean session
    assert flags & 0x04  # will
    assert (flags >> 3) & 3 == 1  # will QoS 1
    assert flags & 0x20  # will retained
    assert struct.unpack("!H", body[8:10])[0] == 30
    assert b"gg/dev1/state" in body and b"offline" in body
    assert net.lookups == [("10.0.0.5", 1883)]


def test_blocking_socket_use_is_refused_by_the_fake():
    # the structural check itself can fail: a blocking recv raises
    net = FakeNet()
    s = net.socket()
    assert isinstance(raises(MisuseError, s.recv, 10), MisuseError)
    raises(MisuseError, s.settimeout, 5)


def test_stalling_broker_times_out_and_backs_off_with_jitter():
    cl, clock, net = _client("ok", connect_timeout_ms=5000, backoff_min_ms=1000, backoff_max_ms=8000)
    polls = 0
    # connect succeeds, CONNECT is sent, the broker never answers
    for _ in range(600):
        cl.poll()
        polls += 1
        clock.advance(10)
        if cl.failures:
            break
    assert cl.failures == 1
    assert cl.state_name() == "down"
    assert "timeout" in cl.last_error
    assert net.sockets[0].closed
    # backoff 1000 with jitter in [500, 1000]; rand gives the top
    waited = 0
    while len(net.sockets) == 1:
        cl.poll()
        clock.advance(10)
        waited += 10
        assert waited <= 1010
    assert waited >= 500
    # the next failure waits up to twice as long
    assert cl._backoff == 2000


def test_backoff_doubles_to_the_cap_and_resets_after_a_lasting_connection():
    cl, clock, net = _client("refused", backoff_min_ms=100, backoff_max_ms=1600)
    for _ in range(4000):
        cl.poll()
        clock.advance(10)
    assert cl.failures >= 6
    assert cl._backoff == 1600
    net.mode = "ok"
    for _ in range(300):
        cl.poll()
        clock.advance(10)
        if cl._sock is not None and cl._sock.tx:
            break
    cl._sock.take()
    cl._sock.feed(CONNACK_OK)
    cl.poll()
    # a CONNACK alone proves nothing (issue 15 finding 2: drop-after-CONNACK loops)
    assert cl.connected and cl._backoff == 1600
    clock.advance(1600)  # up as long as the longest backoff: healthy again
    cl._sock.peer_closed = True
    cl.poll()
    assert not cl.connected and cl._backoff == 200  # min, doubled for the next one
    assert cl.clock.ticks_diff(cl._next_try, clock.ticks_ms()) == 100  # rand: top of [50, 100]


def _flap(cl, clock, net, ms, feed_after_connack, seen=None):
    """Play a broker that accepts every CONNECT, then sends feed_after_connack (or
    drops the connection) at once; return how many connections were made in ms."""
    made = 0
    for _ in range(ms // 10):
        cl.poll()
        s = cl._sock
        if s is not None and s.tx:
            for first, body in s.take():
                if seen is not None:
                    seen.append((first, body))
                if first == 0x10:
                    made += 1
                    s.feed(CONNACK_OK + feed_after_connack)
                    if not feed_after_connack:
                        cl.poll()
                        s.peer_closed = True
        clock.advance(10)
    return made


def test_failures_right_after_connack_back_off_too():
    """Issue 15 finding 2: the backoff went back to the minimum at every CONNACK, so a
    broker that dropped the device right after it looped without any wait."""
    cl, clock, net = _client(backoff_min_ms=100, backoff_max_ms=8000)
    made = _flap(cl, clock, net, 40000, b"")
    # doubling from 50..100 ms to the 8 s cap: about a dozen attempts in 40 s, not hundreds
    assert 5 <= made <= 14, made
    assert cl.failures >= made - 1 and cl._backoff == 8000


def test_an_oversized_publish_is_acknowledged_and_skipped_and_the_connection_stays_up():
    """Issue 15 finding 2: a 3000-byte retained command (limit 2048) closed the connection
    at every CONNACK: a connect/fail loop until someone cleared it."""
    cl, clock, net = _client(backoff_min_ms=100, max_packet=2048)
    cl.subscribe("gg/dev1/command", 1)
    got = []
    cl.on_message = lambda t, p, r: got.append((t, None if p is None else bytes(p), r))
    big = mqtt.packet(0x33, struct.pack("!H", 15) + b"gg/dev1/command" + b"\x00\x07"
                           + b"{" + b"x" * 3000 + b"}")
    small = mqtt.packet(0x32, struct.pack("!H", 15) + b"gg/dev1/command" + b"\x00\x08"
                             + b'{"ok":1}')
    seen = []
    made = _flap(cl, clock, net, 200, big + small, seen)
    for _ in range(20):  # the client reads at most 512 bytes per poll
        cl.poll()
    assert made == 1 and cl.connected, cl.last_error
    assert got == [("gg/dev1/command", None, True), ("gg/dev1/command", b'{"ok":1}', False)]
    acks = [b for f, b in seen + cl._sock.take() if f == 0x40]
    assert acks == [b"\x00\x07", b"\x00\x08"] and cl.rx_dropped == 1
    # the skip never held more than one chunk plus one packet in RAM
    assert len(cl._rx) == 0 and cl._skip == 0


def test_a_raising_message_handler_is_counted_and_the_stream_goes_on():
    cl, clock, net = _client()
    calls = []

    def handler(t, p, r):
        calls.append(bytes(p))
        if p == b"boom":
            raise TypeError("bug in a handler")

    cl.on_message = handler
    run_until_up(cl, clock)
    pk = b""
    for i, body in enumerate((b"boom", b"next", b"boom", b"last")):
        pk += mqtt.packet(0x32, struct.pack("!H", 4) + b"gg/c" + bytes([0, i + 1]) + body)
    cl._sock.feed(pk)
    cl.poll()
    cl.poll()
    assert calls == [b"boom", b"next", b"boom", b"last"]  # each once: no re-parse loop
    assert cl.connected and cl.rx_dropped == 2 and "TypeError" in cl.last_error
    assert len([1 for f, b in cl._sock.take() if f == 0x40]) == 4


def test_connect_that_never_completes_times_out():
    cl, clock, net = _client("hang", connect_timeout_ms=2000)
    for _ in range(250):
        cl.poll()
        clock.advance(10)
    assert cl.failures == 1 and "connecting" in cl.last_error


def test_connack_refusal_is_a_failure():
    cl, clock, net = _client()
    for _ in range(5):
        cl.poll()
    s = cl._sock
    s.take()
    s.feed(b"\x20\x02\x00\x05")
    cl.poll()
    assert not cl.connected and "refused" in cl.last_error


def test_connack_trickled_one_byte_at_a_time():
    cl, clock, net = _client()
    net.trickle = 1
    for _ in range(5):
        cl.poll()
    cl._sock.take()
    cl._sock.feed(CONNACK_OK)
    for _ in range(4):
        cl.poll()
    assert cl.connected


def test_qos1_publish_retransmits_with_dup_until_puback():
    cl, clock, net = _client(retry_ms=2000)
    run_until_up(cl, clock)
    acked = []
    cl.on_puback = acked.append
    pid = cl.publish("gg/dev1/event", b"{}", 1)
    cl.poll()
    s = cl._sock
    (first, body), = s.take()
    t, p, q, r, dup, pid1 = publish_fields(first, body)
    assert (t, p, q, dup, pid1) == ("gg/dev1/event", b"{}", 1, False, pid)
    clock.advance(2000)
    cl.poll()
    pk = [x for x in s.take() if x[0] >> 4 == 3]
    assert len(pk) == 1
    t, p, q, r, dup, pid2 = publish_fields(*pk[0])
    assert dup and pid2 == pid and cl.retransmits == 1
    s.feed(puback(pid))
    cl.poll()
    assert acked == [pid] and not cl._inflight
    clock.advance(5000)
    cl.poll()
    assert [x for x in s.take() if x[0] >> 4 == 3] == []


def _resend_due(cl, clock, s):
    """Let retry_ms pass; return the PUBLISH packets the client re-sent."""
    clock.advance(cl.retry_ms)
    cl.poll()
    return [x for x in s.take() if x[0] >> 4 == 3]


def test_a_connection_that_answers_no_resend_is_dropped_and_the_next_one_is_in_step():
    """The soak's stuck client: the stream is read out of step (here a packet header claims
    2000 bytes that never come), so every PUBACK after it is swallowed. Before, the client
    re-sent every retry_ms for ever on that connection; now the 4th re-send is not made: the
    connection ends ("no PUBACK", a failure, the backoff) and the next one starts clean."""
    cl, clock, net = _client(retry_ms=2000, keepalive_s=0)
    run_until_up(cl, clock)
    cl.publish("gg/dev1/event", b"{}", 1)
    cl.poll()
    s = cl._sock
    s.take()
    s.feed(b"\x30\xd0\x0f")  # a PUBLISH of 2000 bytes, never completed
    for i in range(3):
        s.feed(puback(1))  # answered, but read as that packet's body
        assert len(_resend_due(cl, clock, s)) == 1 and cl.connected
    assert cl.retransmits == 3 and cl.failures == 0
    assert _resend_due(cl, clock, s) == [] and not cl.connected
    assert (cl.failures, cl.last_error, cl.retransmits) == (1, "no PUBACK", 3)
    assert not cl._inflight  # the reporter re-sends from its outbox on the next connection
    clock.advance(cl.backoff_max_ms)
    for _ in range(3):
        cl.poll()
    s2 = cl._sock
    assert s2 is not s and cl._rx == bytearray()
    s2.take()
    s2.feed(CONNACK_OK)
    cl.poll()
    assert cl.connected
    acked = []
    cl.on_puback = acked.append
    pid = cl.publish("gg/dev1/event", b"{}", 1)
    cl.poll()
    s2.feed(puback(pid))
    cl.poll()
    assert acked == [pid]


def test_any_puback_starts_the_resend_count_again():
    cl, clock, net = _client(retry_ms=2000, keepalive_s=0)
    run_until_up(cl, clock)
    a = cl.publish("gg/dev1/event", b"a", 1)
    cl.poll()
    s = cl._sock
    s.take()
    for i in range(2):
        assert len(_resend_due(cl, clock, s)) == 1
    s.feed(puback(a))  # a slow broker, but in step
    cl.poll()
    cl.publish("gg/dev1/event", b"b", 1)
    cl.poll()
    s.take()
    for i in range(3):
        assert len(_resend_due(cl, clock, s)) == 1
    assert cl.connected and cl.retransmits == 5 and cl.failures == 0


def test_inflight_window_and_not_connected_refuse_instead_of_blocking():
    cl, clock, net = _client(max_inflight=2)
    assert cl.publish("a/b", b"x", 1) is None  # not connected: the caller keeps it
    run_until_up(cl, clock)
    assert cl.publish("a/b", b"x", 1) is not None
    assert cl.publish("a/b", b"y", 1) is not None
    assert cl.publish("a/b", b"z", 1) is None
    assert cl.publish("a/b", b"t", 0) == 0  # QoS 0 is not limited by the window


def test_keepalive_ping_and_dead_broker_detection():
    cl, clock, net = _client(keepalive_s=10, ping_timeout_ms=3000)
    run_until_up(cl, clock)
    s = cl._sock
    s.take()
    clock.advance(5000)
    cl.poll()
    assert (0xC0, b"") in s.take()
    s.feed(b"\xd0\x00")
    cl.poll()
    assert cl._ping_sent is None
    clock.advance(5000)
    cl.poll()
    assert (0xC0, b"") in s.take()
    clock.advance(3000)
    cl.poll()
    assert not cl.connected and cl.last_error == "no PINGRESP"


def test_resubscribes_after_reconnect_and_acks_incoming_qos1():
    cl, clock, net = _client(backoff_min_ms=100)
    cl.subscribe("gg/dev1/command", 1)
    got = []
    cl.on_message = lambda t, p, r: got.append((t, bytes(p), r))
    downs = []
    cl.on_disconnect = downs.append
    run_until_up(cl, clock)
    cl.poll()
    subs = [b for f, b in cl._sock.take() if f == 0x82]
    assert len(subs) == 1 and b"gg/dev1/command" in subs[0]
    # broker drops the connection
    cl._sock.peer_closed = True
    cl.poll()
    assert not cl.connected and downs == ["closed by broker"]
    for _ in range(100):
        clock.advance(10)
        cl.poll()
        if cl._sock is not None and cl._sock.tx:
            break
    cl._sock.take()
    cl._sock.feed(CONNACK_OK)
    cl.poll()
    cl.poll()
    subs = [b for f, b in cl._sock.take() if f == 0x82]
    assert len(subs) == 1 and b"gg/dev1/command" in subs[0]
    # incoming QoS 1 publish: PUBACK with its packet id, callback gets it
    body = struct.pack("!H", 15) + b"gg/dev1/command" + b"\x12\x34" + b'{"x":1}'
    cl._sock.feed(mqtt.packet(0x32, body))
    cl.poll()
    cl.poll()
    assert got == [("gg/dev1/command", b'{"x":1}', False)]
    assert (0x40, b"\x12\x34") in cl._sock.take()


def test_oversized_non_publish_and_garbage_packets_drop_the_connection():
    cl, clock, net = _client(max_packet=64)
    run_until_up(cl, clock)
    cl._sock.feed(mqtt.packet(0x90, b"\x00\x01" + b"x" * 100))
    cl.poll()
    assert not cl.connected and "max_packet" in cl.last_error
    cl2, clock2, net2 = _client()
    run_until_up(cl2, clock2)
    cl2._sock.feed(b"\x30\xff\xff\xff\xff\x01")
    cl2.poll()
    assert not cl2.connected


def test_dns_names_are_refused_unless_allowed_then_resolved_once():
    e = raises(ConfigError, _client, "ok", host="broker.example")
    assert "numeric" in str(e)
    cl, clock, net = _client("refused", host="broker.example", allow_dns=True, backoff_min_ms=10,
                             backoff_max_ms=20)
    for _ in range(300):
        cl.poll()
        clock.advance(10)
    assert cl.failures >= 5
    assert net.lookups == [("broker.example", 1883)]


def test_bad_config_is_refused_with_the_key_named():
    for bad, key in (({"port": 0}, "port"), ({"keepalive_s": -1}, "keepalive_s"),
                     ({"bogus": 1}, "bogus"), ({"backoff_min_ms": 5000, "backoff_max_ms": 1000},
                                               "backoff_max_ms")):
        e = raises(ConfigError, _client, "ok", **bad)
        assert key in str(e), (bad, str(e))


def test_partial_sends_are_completed_in_order():
    cl, clock, net = _client()
    run_until_up(cl, clock)
    s = cl._sock
    s.take()
    s.send_limit = 7
    for i in range(3):
        cl.publish("t/x", b"payload-%d" % i, 0)
    for _ in range(40):
        cl.poll()
    pk = s.take()
    assert [publish_fields(f, b)[1] for f, b in pk] == [b"payload-0", b"payload-1", b"payload-2"]


def test_disconnect_sends_disconnect_and_closes():
    cl, clock, net = _client()
    run_until_up(cl, clock)
    s = cl._sock
    s.take()
    cl.disconnect()
    assert (0xE0, b"") in s.take()
    assert s.closed and not cl.connected


def test_wire_remaining_length_roundtrip():
    for n in (0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        enc = mqtt._remaining(n)
        buf = b"\x30" + enc
        assert mqtt.parse_remaining(buf, 0) == (n, 1 + len(enc))
        if len(enc) > 1:
            assert mqtt.parse_remaining(buf[:-1], 0) is None


class SSLWantReadError(Exception):
    pass


class FakeTLS:
    def __init__(self, raw, wants, fail):
        self.raw = raw
        self.wants = wants
        self.fail = fail
        self.handshakes = 0

    def do_handshake(self):
        self.handshakes += 1
        if self.fail:
            raise OSError(104)
        if self.handshakes <= self.wants:
            raise SSLWantReadError()

    def send(self, b):
        return self.raw.send(b)

    def recv(self, n):
        return self.raw.recv(n)

    def readinto(self, buf):
        return self.raw.readinto(buf)

    def close(self):
        self.raw.close()


class FakeContext:
    def __init__(self, wants=2, fail=False):
        self.wraps = []
        self.wants = wants
        self.fail = fail

    def wrap_socket(self, sock, **kw):
        self.wraps.append(kw)
        assert sock.blocking is False
        return FakeTLS(sock, self.wants, self.fail)


def test_tls_handshake_is_stepped_without_blocking():
    clock = SimClock()
    net = FakeNet()
    ctx = FakeContext(wants=2)
    cl = MQTTClient(clock, net, {"host": "10.0.0.5", "port": 8883,
                                 "server_hostname": "mqtt.example"}, ssl_context=ctx)
    states = []
    for _ in range(6):
        cl.poll()
        states.append(cl.state_name())
    assert ctx.wraps == [{"do_handshake_on_connect": False, "server_hostname": "mqtt.example"}]
    assert "tls" in states and states[-1] == "connack_wait"
    assert cl._sock.handshakes == 3
    pk = net.last.take()
    assert pk and pk[0][0] == 0x10  # CONNECT only after the handshake


def test_tls_handshake_failure_is_a_connection_failure():
    clock = SimClock()
    cl = MQTTClient(clock, FakeNet(), {"host": "10.0.0.5"}, ssl_context=FakeContext(fail=True))
    for _ in range(4):
        cl.poll()
    assert cl.failures == 1 and "tls handshake" in cl.last_error


def test_esp32_lwip_errno_values_for_a_nonblocking_connect():
    cl, clock, net = _client("lwip")
    first, body = run_until_up(cl, clock)
    assert first == 0x10 and cl.connected and cl.failures == 0
    assert net.last.tries == 3
