"""Fuzzing (hypothesis) of two parsers that face the outside (issue 15 item 6):

* the ESP-NOW frame parser (gasguard.interlock_frame) and both link ends behind it:
  random bytes and mutations of every valid frame type (bit flips, truncation, extension,
  overwritten bytes, other keys), handed to a detector and a valve that are paired, unpaired
  or in a pairing window: only FrameError ever leaves the codec; nothing leaves a link;
  no state changes (inside a window a well-formed foreign offer may abort the window,
  nothing else); every rejected frame is counted once; work per poll stays bounded.
* the console line parser (gasguard.service) in front of the real devices (a DetectorApp
  on the virtual board and a ValveApp), with and without factory mode: command-shaped
  lines with hostile arguments. Every line gets exactly one reply line, never E_DEVICE (an
  exception inside the device), the line buffer stays within line_max, and a request
  answered ERR leaves every record in the flash as it was.

CI size: the examples below (a few seconds); a long run: HYPOTHESIS_PROFILE=long
(docs/security.md, "Fuzzing").
"""

import json
import os
import shutil
import struct
import tempfile

from hypothesis import HealthCheck, event, given, settings, strategies as st

from gasguard import interlock_frame as F
from gasguard.espnow_link import DetectorLink, ValveLink, provision
from gasguard.store import FileStore
from simboard import SimClock, SimConsole
from simradio import SimAir

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
N = 5000 if LONG else 300
KEY = bytes(range(32))
DET_MAC = b"\x02\x00\x00\x00\x00\x01"
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
ODD_MAC = b"\x02\x00\x00\x00\x00\x77"


def _valid_frames(key):
    return [
        F.heartbeat(key, 5, 3, 1), F.close(key, 6, 3, 6, 1), F.status(key, 7, 5, 2, 1, 1),
        F.ack(key, 8, 6, 6, 2, 1), F.pair_request(bytes(range(16)), bytes(range(32, 64))),
        F.pair_response(key, bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 64))),
    ]


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["random", "flip", "cut", "extend", "poke", "other_key"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    base = bytearray(draw(st.sampled_from(_valid_frames(KEY))))
    if kind == "flip":
        pos = draw(st.integers(0, len(base) * 8 - 1))
        base[pos // 8] ^= 1 << (pos % 8)
    elif kind == "cut":
        base = base[: draw(st.integers(0, len(base) - 1))]
    elif kind == "extend":
        base += draw(st.binary(min_size=1, max_size=260))
    elif kind == "poke":
        base[draw(st.integers(0, len(base) - 1))] = draw(st.integers(0, 255))
    else:
        base = bytearray(draw(st.sampled_from(_valid_frames(draw(st.binary(min_size=32, max_size=32))))))
    return bytes(base)


@settings(max_examples=N, deadline=None)
@given(frames())
def test_the_codec_raises_nothing_but_frame_error(data):
    for fn in (lambda: F.peek(data), lambda: F.decode(KEY, data, (F.T_CLOSE, F.T_HEARTBEAT)),
               lambda: F.decode(KEY, data, (F.T_STATUS, F.T_ACK)), lambda: F.decode_pair_request(data),
               lambda: F.split_pair_response(data, bytes(range(16)))):
        try:
            fn()
        except F.FrameError as e:
            assert e.reason in ("malformed", "version", "bad_tag", "unsupported")
    if len(data) > F.MAX_FRAME:
        try:
            F.peek(data)
            raise AssertionError("a frame over the ESP-NOW limit was taken")
        except F.FrameError as e:
            assert e.reason == "malformed"


def _ends(tmp, state):
    clock = SimClock()
    air = SimAir(clock)
    ds, vs = FileStore(tmp + "/d"), FileStore(tmp + "/v")
    if state != "unpaired":
        provision(ds, "D", KEY, VALVE_MAC)
        provision(vs, "V", KEY, DET_MAC)
    det = DetectorLink(air.radio(DET_MAC), clock, ds, {"heartbeat_ms": 500, "link_timeout_ms": 3000})
    val = ValveLink(air.radio(VALVE_MAC), clock, vs, {"heartbeat_ms": 500, "link_timeout_ms": 3000},
                    on_close=lambda r: None, get_state=lambda: ("open", "none"))
    for _ in range(60):  # 1.2 s: the link is up and synced (when paired)
        clock.advance(20)
        det.poll()
        val.poll()
    if state == "pairing":
        det.pair_button()
        val.pair_button()
    return det, val


def _genuine(data):
    # a mutation can give back a valid frame (a byte poked to its own value): not a forgery
    try:
        F.decode(KEY, data, tuple(F.BODY_LEN))
        return True
    except F.FrameError:
        return False


def _snap(link):
    return (link.key, link.peer, link.last_rx if link.key else 0, link.seen if link.key else 0, link.link,
            getattr(link, "state", None), getattr(link, "close_id", None), getattr(link, "done_close_id", None),
            getattr(link, "closes_executed", None))


@settings(max_examples=N // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["paired", "unpaired", "pairing"]), st.lists(frames(), min_size=1, max_size=8),
       st.sampled_from([DET_MAC, VALVE_MAC, ODD_MAC]))
def test_links_take_any_frame_without_exception_or_change(state, batch, src):
    tmp = tempfile.mkdtemp(prefix="gg-fuzz-")
    try:
        det, val = _ends(tmp, state)
        if state == "paired":
            assert det.link == "up" and val.link == "up"
        for data in batch:
            if _genuine(data):
                continue
            for link in (det, val):
                before = _snap(link)
                n = sum(link.rejected.values())
                link._receive_one(src, data)  # must not raise
                offer = len(data) > 1 and data[0] == 1 and data[1] in (F.T_PAIR_REQ, F.T_PAIR_RESP)
                if offer and state == "pairing":
                    continue  # heard as an offer (maybe aborting the window), not counted
                assert _snap(link) == before, (state, data.hex())
                assert sum(link.rejected.values()) == n + 1, (state, data.hex())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_flood_is_bounded_per_poll():
    tmp = tempfile.mkdtemp(prefix="gg-flood-")
    try:
        det, val = _ends(tmp, "paired")
        for i in range(1000):
            det.radio.air.inject(ODD_MAC, VALVE_MAC, F.close(bytes(32), i + 1, 0, i + 1, 1))
        before = sum(val.rejected.values())
        val.poll()
        assert sum(val.rejected.values()) - before == val.cfg["max_frames_per_poll"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ the console
VERBS = ["HELLO", "HELP", "ID?", "STATUS?", "READ?", "LOG?", "HIST?", "CFG?", "CFG", "CAL?", "CAL", "AUTH",
         "FACTORY?", "PROV", "HUSH", "NOPE", "#t1 STATUS?", "#", "cal", "Cfg"]  # not ITEST/SELFTEST: they act over time
ARG_WORDS = ["", "ZERO", "SPAN", "COMMIT", "ABORT", "REVERT", "ch4", "co", "h2s", "1e400", "-1", "nan",
             "{}", "[]", "null", '"x"', "{\"a\":", "app.history_period_s", "detector.ch4.delay_s",
             "valve.under_pressure_pa", "99999999999999999999", "LOCK", "RESET", "END", "00" * 32,
             '{"id": 5}', '{"secret": "zz"}', "\t", "LOG", "0", "51"]
command_st = st.tuples(st.sampled_from(VERBS), st.lists(st.sampled_from(ARG_WORDS), max_size=4)).map(
    lambda t: " ".join([t[0]] + t[1]))
line_st = st.one_of(
    command_st, command_st, command_st,
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
).filter(lambda s: s.strip() and not s.strip().upper().startswith(("REBOOT", "MAINT")))  # those reset


def _store_state(root):
    out = {}
    for n in sorted(os.listdir(root)):
        if n in ("events.log", "boot.rec") or n.startswith("."):
            continue  # the event log records refusals; the boot count is the boot's
        with open(os.path.join(root, n), "rb") as f:
            out[n] = f.read()
    return out


def _detector(root):
    from gasguard.app import DetectorApp
    from virtual_device import VirtualBoard

    class Board(VirtualBoard):
        def free_heap(self):
            return 40000  # gc.mem_free() exists on MicroPython only

    clock = SimClock()
    board = Board(clock, SimConsole(), 5, "power_on", False)
    app = DetectorApp(board, FileStore(root), {"detector": {"profile": "cn", "tier": "mid"}})
    return app, board, clock


def _valve(root):
    from gasguard.valve_app import ValveApp
    from valve_app_rig import Board

    clock = SimClock()
    board = Board(clock)
    app = ValveApp(board, FileStore(root), None, board_name="fuzz")  # the real IdentityStore
    return app, board, clock


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["detector", "valve"]), st.booleans(), st.lists(line_st, min_size=1, max_size=10))
def test_console_lines_against_the_real_devices(kind, factory, lines):
    root = tempfile.mkdtemp(prefix="gg-fuzzc-")
    try:
        app, board, clock = (_detector if kind == "detector" else _valve)(root)
        app.service.factory = factory
        svc = app.service
        for line in lines:
            before = _store_state(root)
            board.console.feed(line.encode() + b"\n")
            for _ in range(10):
                clock.advance(10)
                if hasattr(board, "step"):
                    board.step()
                app.poll()
                assert svc._n <= svc.line_max
            out = board.console.take_output().decode().split("\n")
            assert out[-1] == "" and len(out) == 2, (line, out)
            reply = out[0].split(" ", 1)[1] if out[0].startswith("#") else out[0]
            assert reply.startswith("OK") or reply.startswith("ERR "), (line, reply)
            assert not reply.startswith("ERR E_DEVICE"), (line, reply)
            event("%s factory=%s %s" % (kind, factory, reply[:9]))
            if reply.startswith("ERR"):
                assert _store_state(root) == before, (line, reply)
            else:
                json.loads(reply[3:])
    finally:
        shutil.rmtree(root, ignore_errors=True)
