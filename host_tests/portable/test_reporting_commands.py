"""Downlink commands: only authenticated, fresh, allow-listed commands change anything."""

import json

from gasguard.commands import Commands, sign
from gasguard.store import FileStore
from gasguard.reporter import WallTime
from ptest import tmpdir
from simboard import SimClock

KEY = b"k" * 32
DEV = "88.118.8/GDH.240915.00123F"
NOW = 1790000000


class Handler:
    def __init__(self):
        self.calls = []

    def hush(self):
        self.calls.append("hush")

    def self_test(self):
        self.calls.append("self_test")

    def report_now(self):
        self.calls.append("report_now")

    def set_interval(self, s):
        self.calls.append(("set_interval", s))

    def close_valve(self):
        self.calls.append("close_valve")


class Broken(Handler):
    def hush(self):
        raise RuntimeError("buzzer driver")


def _setup(tag, synced=True, handler=None):
    clock = SimClock()
    wall = WallTime(clock)
    if synced:
        wall.set(NOW)
    st = FileStore(tmpdir(tag))
    h = handler or Handler()
    return Commands(DEV, KEY, st, h, wall, 300), h, st, clock


def _send(c, m):
    return c.handle(json.dumps(m).encode())


def test_each_allowed_command_runs_once_and_answers_ok():
    c, h, st, clock = _setup("cmd1")
    ctr = 0
    for cmd, args in (("hush", None), ("self_test", None), ("report_now", None),
                      ("set_interval", {"seconds": 300}), ("close_valve", None)):
        ctr += 1
        r = _send(c, sign(KEY, DEV, "c%d" % ctr, ctr, NOW, cmd, args))
        assert r["ok"] is True and r["cmd"] == cmd and r["id"] == "c%d" % ctr, r
    assert h.calls == ["hush", "self_test", "report_now", ("set_interval", 300), "close_valve"]
    assert c.accepted == 5 and c.rejected == 0


def _rejects(c, h, m, reason):
    before = list(h.calls)
    ctr = c.last_ctr
    r = c.handle(m if isinstance(m, (bytes, str)) else json.dumps(m).encode())
    assert r["ok"] is False and r["reason"] == reason, (r, reason)
    assert h.calls == before and c.last_ctr == ctr  # nothing changed
    return r


def test_rejections_name_the_reason_and_change_nothing():
    c, h, st, clock = _setup("cmd2")
    good = sign(KEY, DEV, "a1", 5, NOW, "hush")
    _rejects(c, h, b"not json", "malformed")
    _rejects(c, h, b"[1,2]", "malformed")
    _rejects(c, h, dict(good, extra=1), "malformed")
    m = dict(good)
    del m["ctr"]
    _rejects(c, h, m, "malformed")
    _rejects(c, h, dict(good, ctr="5"), "malformed")
    _rejects(c, h, dict(good, ctr=True), "malformed")
    _rejects(c, h, dict(good, mac=good["mac"].upper()), "malformed")
    _rejects(c, h, dict(good, id="a b"), "malformed")
    _rejects(c, h, dict(good, v=2), "malformed")
    # wrong key, tampered fields, wrong device
    _rejects(c, h, sign(b"x" * 32, DEV, "a1", 5, NOW, "hush"), "bad_mac")
    _rejects(c, h, dict(good, ctr=6), "bad_mac")
    _rejects(c, h, dict(good, cmd="self_test"), "bad_mac")
    _rejects(c, h, sign(KEY, "88.118.8/OTHER", "a1", 5, NOW, "hush"), "bad_mac")
    # never open the valve, whatever is signed
    r = _rejects(c, h, sign(KEY, DEV, "a2", 6, NOW, "open_valve"), "forbidden")
    assert "never" in r["detail"]
    _rejects(c, h, sign(KEY, DEV, "a3", 7, NOW, "format_flash"), "unknown_command")
    _rejects(c, h, sign(KEY, DEV, "a4", 8, NOW, "set_interval", {"seconds": 1}), "bad_args")
    _rejects(c, h, sign(KEY, DEV, "a5", 9, NOW, "set_interval"), "bad_args")
    _rejects(c, h, sign(KEY, DEV, "a6", 10, NOW, "hush", {"x": 1}), "bad_args")
    # stale or future-dated
    _rejects(c, h, sign(KEY, DEV, "a7", 11, NOW - 301, "hush"), "stale")
    _rejects(c, h, sign(KEY, DEV, "a8", 12, NOW + 301, "hush"), "stale")
    assert c.accepted == 0
    # and then the good one works
    assert _send(c, good)["ok"]
    assert h.calls == ["hush"]


def test_replay_is_refused_even_after_a_reboot():
    c, h, st, clock = _setup("cmd3")
    m = sign(KEY, DEV, "r1", 41, NOW, "hush")
    assert _send(c, m)["ok"]
    _rejects(c, h, m, "replay")
    _rejects(c, h, sign(KEY, DEV, "r2", 40, NOW, "hush"), "replay")
    c2 = Commands(DEV, KEY, st, h, c.wall, 300)  # reboot: counter comes from the store
    assert c2.last_ctr == 41
    _rejects(c2, h, m, "replay")
    assert _send(c2, sign(KEY, DEV, "r3", 42, NOW, "hush"))["ok"]


def test_unsynchronised_time_accepts_on_counter_and_says_so():
    c, h, st, clock = _setup("cmd4", synced=False)
    r = _send(c, sign(KEY, DEV, "u1", 1, 12345, "self_test"))
    assert r["ok"] and r["q"] == ["time_unverified"]


def test_missing_handler_method_is_unsupported_and_handler_errors_are_reported():
    class DetectorOnly:
        def hush(self):
            pass

    c, h, st, clock = _setup("cmd5", handler=DetectorOnly())
    r = _send(c, sign(KEY, DEV, "x1", 1, NOW, "close_valve"))
    assert r["reason"] == "unsupported" and c.last_ctr == 0
    c2, h2, st2, clock2 = _setup("cmd6", handler=Broken())
    r = _send(c2, sign(KEY, DEV, "x2", 1, NOW, "hush"))
    assert r["reason"] == "handler_error" and r["detail"] == "RuntimeError"


def test_device_without_key_accepts_nothing():
    clock = SimClock()
    h = Handler()
    c = Commands(DEV, None, FileStore(tmpdir("cmd7")), h, None, 300)
    r = _send(c, sign(KEY, DEV, "k1", 1, NOW, "hush"))
    assert r["reason"] == "bad_mac" and h.calls == []


def _with_seconds(m, text):
    """The command's JSON with args.seconds replaced by raw JSON text (1e400 has no
    Python literal that json.dumps writes back)."""
    return json.dumps(m).replace('"seconds": 60', '"seconds": ' + text).encode()


GARBAGE_SECONDS = ("[1]", "{}", "null", '"x"', "1e400", "-1e400", "true", "60.5",
                   "1" + "0" * 40)


def test_garbage_arguments_are_answered_never_raised():
    """Issue 15 finding 1: these made handle() raise (TypeError, OverflowError) before
    the MAC was checked, and the exception stalled event delivery."""
    c, h, st, clock = _setup("cmd8")
    good = sign(KEY, DEV, "g1", 5, NOW, "set_interval", {"seconds": 60})
    for text in GARBAGE_SECONDS:
        _rejects(c, h, _with_seconds(dict(good, mac="0" * 64), text), "bad_mac")
        # the same, signed by someone with the key: authenticated, then refused
        mac = sign(KEY, DEV, "g1", 5, NOW, "set_interval", {"seconds": "x"})["mac"]
        if text not in ("1" + "0" * 40,):
            _rejects(c, h, _with_seconds(dict(good, mac=mac), text), "bad_args")
    assert c.rejected == 2 * len(GARBAGE_SECONDS) - 1 and c.accepted == 0
    # oversized, not UTF-8, deeply nested: refused before or by the JSON parser
    r = _rejects(c, h, b'{"v":1,"id":"' + b"a" * 600 + b'"}', "malformed")
    assert r["detail"] == "too_large"
    _rejects(c, h, b"\xff\xfe{}", "malformed")
    _rejects(c, h, b"[" * 400 + b"]" * 400, "malformed")
    _rejects(c, h, b"", "malformed")
    assert _send(c, good)["ok"] and h.calls == [("set_interval", 60)]


def test_a_retained_delivery_is_refused_before_it_is_read():
    c, h, st, clock = _setup("cmd9")
    m = sign(KEY, DEV, "t1", 1, NOW, "hush")
    r = c.handle(json.dumps(m).encode(), True)
    assert r == {"id": None, "cmd": None, "ok": False, "reason": "malformed", "detail": "retained"}
    assert h.calls == [] and c.last_ctr == 0


def test_a_corrupt_counter_refuses_commands_until_time_is_known():
    clock = SimClock()
    wall = WallTime(clock)
    st = FileStore(tmpdir("cmd10"))
    st.write(Commands.CTR_FILE, b"\xa5\x01garbage")
    h = Handler()
    c = Commands(DEV, KEY, st, h, wall, 300)
    r = _send(c, sign(KEY, DEV, "z1", 1, NOW, "hush"))
    assert r["reason"] == "stale" and h.calls == []
    wall.set(NOW)
    assert _send(c, sign(KEY, DEV, "z2", 2, NOW, "hush"))["ok"] and h.calls == ["hush"]


def test_a_payload_that_is_not_a_json_object_has_one_reason_on_every_interpreter():
    """b"00" and b"1 2" are JSON (0, 1) to MicroPython's json.loads and errors to CPython's:
    the platform gets the same refusal either way (before: "not JSON" on one, "not a JSON
    object" on the other)."""
    from gasguard.commands import CommandError, parse

    for payload in (b"00", b"1 2", b"[1]", b"nope", b"\xff", b"7"):
        try:
            parse(payload)
        except CommandError as e:
            assert (e.args[0], e.args[1]) == ("malformed", "not a JSON object"), (payload, e.args)
        else:
            raise AssertionError("accepted %r" % payload)


class _BrokenWall:
    """A wall clock with a bug: the command is authenticated, then reading the time raises."""

    def now(self):
        raise RuntimeError("rtc driver")


class _BrokenStore:
    """A store whose write fails with something other than the OSError it documents."""

    def __init__(self, inner):
        self.inner = inner

    def read(self, name):
        return self.inner.read(name)

    def write(self, name, data):
        raise ValueError("driver bug")


def test_a_bug_past_the_mac_check_is_answered_malformed_and_runs_nothing():
    """The last resort in Commands.handle: an exception that is not a CommandError, raised
    after the MAC passed (the time source, the counter store), is answered with its type's
    name, counted as rejected, runs no handler and leaves the counter where it was; the next
    good command still runs (before the last resort, it would have reached the loop)."""
    h = Handler()
    st = FileStore(tmpdir("cmd11"))
    c = Commands(DEV, KEY, st, h, _BrokenWall(), 300)
    r = _send(c, sign(KEY, DEV, "w1", 1, NOW, "hush"))
    assert r == {"id": "w1", "cmd": "hush", "ok": False, "reason": "malformed",
                 "detail": "RuntimeError"}, r
    assert h.calls == [] and c.last_ctr == 0 and c.rejected == 1 and c.accepted == 0

    clock = SimClock()
    wall = WallTime(clock)
    wall.set(NOW)
    h2 = Handler()
    c2 = Commands(DEV, KEY, _BrokenStore(FileStore(tmpdir("cmd12"))), h2, wall, 300)
    r = _send(c2, sign(KEY, DEV, "w2", 1, NOW, "hush"))
    assert r["reason"] == "malformed" and r["detail"] == "ValueError", r
    assert h2.calls == [] and c2.last_ctr == 0 and c2.rejected == 1

    c.wall = wall
    assert _send(c, sign(KEY, DEV, "w3", 2, NOW, "hush"))["ok"] and h.calls == ["hush"]
