"""The detector's published Modbus register map (docs/modbus.md) on a real Detector
(scripted channels), read and written through the RTU slave as attach_modbus builds it.

The app around the Detector is a small shim with DetectorApp's entry points (a whole
DetectorApp does not compile next to the test in a 112k heap; the virtual-device tests
run the real one behind a pseudo-terminal)."""

from modbus_bus import Bus
from modbus_rig import ADDRESS, request, with_crc
from gasguard import modbus_regs as M


class Ident:
    locked = True

    def load(self):
        return {"id": "88.111.8/GGD-0001", "model": "GGD-M1"}


class App:
    """DetectorApp's parts the bus reaches: detector, uptime_s(), hush(), self_test(),
    close_valve() through the interlocks, events (the app is the bus's command handler)."""

    KIND = "detector"

    def __init__(self, board, det_factory):
        self.identity = Ident()
        self.pollers = []
        self.sinks = []
        self.evs = []
        self.clock = board.clock
        self._t0 = board.clock.elapsed_ms
        self.detector = det_factory(self.emit)

    def emit(self, ev):
        self.evs.append(ev)
        for s in self.sinks:
            s.event(ev)

    def events(self, n):
        return self.evs[-n:]

    def uptime_s(self):
        return (self.clock.elapsed_ms - self._t0) // 1000

    def hush(self):
        return self.detector.hush()

    def self_test(self):
        return self.detector.self_test()

    def close_valve(self, cause="remote"):
        for s in self.detector.interlocks:
            s.close(cause)
        return {"closing": len(self.detector.interlocks)}

    def poll(self):
        self.detector.poll()
        for p in self.pollers:
            p.poll()


def detector(tag, tier="mid"):
    from detector_fakes import FakeCh, FakeSupply, Sink
    from gasguard.detector import Detector
    from simboard import SimClock, SimPin

    class Board:
        pass

    b = Board()
    b.clock = SimClock()
    for n in ("led_green", "led_yellow", "led_red", "buzzer", "relay"):
        setattr(b, n, SimPin(n, SimPin.OUT))
    b.button = SimPin("button", SimPin.IN, 0)
    chans = {"ch4": FakeCh("ch4")}
    if tier != "low":
        chans["co"] = FakeCh("co")

    def factory(emit):
        return Detector(b, {"profile": "cn", "tier": tier}, None, emit, channels=chans,
                        supply=FakeSupply())

    app = App(b, factory)
    app.detector.interlocks.append(Sink())  # the valve it shuts

    def run(s):
        for _ in range(s):
            b.clock.advance(1000)
            app.poll()

    return app, chans, run


def test_detector_clean_air_then_ch4_alarm_levels_then_fault():
    app, ch, run = detector("a")
    bus = Bus(app, app.poll)
    run(3)
    st, ch4, co = bus.regs(4, 0, 3)
    assert st & 0x1F == 0 and ch4 == 0 and co == 0
    assert bus.regs(3, 0, 3) == [st, ch4, co]  # 03 reads the same map
    lel = app.detector.cfg["ch4_pct_lel_x10"]  # ppm x10 in one %LEL
    ch["ch4"].ppm_x10 = 30 * lel  # 30 %LEL: above the high set point of every profile
    run(30)
    st, ch4, co = bus.regs(4, 0, 3)
    assert st & 3 == 3 and ch4 == 300
    assert st & 16  # relay / shut-off requested
    assert bus.regs(4, 6, 1) == [2]
    assert bus.regs(4, 9, 2) == [1, 1]  # one level-1 and one level-2 alarm since boot
    ch["ch4"].ppm_x10 = 0
    ch["co"].fault = "sensor_open"
    ch["co"].fault_bits = 2
    run(40)
    st, ch4, co = bus.regs(4, 0, 5)[:3]
    assert st & 8 and not st & 3
    assert co == M.UNKNOWN
    assert bus.regs(4, 4, 1) == [2]


def test_detector_low_tier_has_no_co():
    app, ch, run = detector("low", tier="low")
    bus = Bus(app, app.poll)
    run(2)
    assert bus.regs(4, 2, 1) == [M.UNKNOWN]
    assert bus.regs(4, 4, 1) == [0x8000]


def test_common_block_and_identification():
    app, ch, run = detector("c")
    bus = Bus(app, app.poll)
    run(70)
    ver, kind, fw1, fw2, up_hi, up_lo = bus.regs(4, M.COMMON, 6)
    assert ver == M.MAP_VERSION and kind == M.KIND_DETECTOR
    from gasguard import VERSION

    assert "%d.%d.%d" % (fw1 >> 8, fw1 & 0xFF, fw2) == VERSION
    assert (up_hi << 16) | up_lo == app.uptime_s() >= 70
    rep = bus.ask(with_crc(bytes([ADDRESS, 43, 14, 4, 0x80])))
    assert rep[8:10] == bytes([0x80, 17]) and rep[10:27] == b"88.111.8/GGD-0001"
    rep = bus.ask(with_crc(bytes([ADDRESS, 43, 14, 4, 1])))
    assert rep[10:16] == b"GGD-M1"


def test_only_the_command_register_is_writable_and_only_with_known_codes():
    app, ch, run = detector("w")
    bus = Bus(app, app.poll)
    run(2)
    cfg_before = app.detector.cfg["ch4_low_x10"]
    for a in (0, 1, 2, 6, 100, 199, 201, 202, 1000):
        assert bus.ask(request(ADDRESS, 6, a, 1)) == with_crc(bytes([ADDRESS, 0x86, 2])), a
    for v in (0, 1, 2, 3, 0xFFFF, 0x4F50):  # 0x4F50 "OP": there is no open
        assert bus.ask(request(ADDRESS, 6, M.COMMAND, v)) == with_crc(bytes([ADDRESS, 0x86, 3]))
    assert bus.regs(3, M.COMMAND, 2) == [0, M.R_NONE]
    assert app.detector.cfg["ch4_low_x10"] == cfg_before


def test_hush_self_test_and_close_commands_use_the_device_entry_points():
    app, ch, run = detector("h")
    bus = Bus(app, app.poll)
    run(2)
    f = request(ADDRESS, 6, M.COMMAND, M.CMD_SELF_TEST)
    assert bus.ask(f) == f
    assert bus.regs(3, M.COMMAND, 2) == [M.CMD_SELF_TEST, M.R_DONE]
    run(6)
    assert [e for e in app.events(20) if e["event"] == "self_test"]
    ch["ch4"].ppm_x10 = app.detector.cfg["ch4_low_x10"] + 50
    run(30)
    assert app.detector.alarm_level("ch4") == 1
    assert bus.ask(f) == f  # received, but the detector declines a self-test in an alarm
    assert bus.regs(3, M.RESULT, 1) == [M.R_REFUSED]
    f = request(ADDRESS, 6, M.COMMAND, M.CMD_HUSH)
    assert bus.ask(f) == f
    assert app.detector.hushed and bus.regs(4, 0, 1)[0] & 32
    assert bus.regs(3, M.COMMAND, 2) == [M.CMD_HUSH, M.R_DONE]
    hush = [e for e in app.events(20) if e["event"] == "hush"]
    assert hush and hush[-1]["state"] == "on"
    sink = app.detector.interlocks[0]
    before = len(sink.causes)
    f = request(ADDRESS, 6, M.COMMAND, M.CMD_CLOSE)
    assert bus.ask(f) == f
    assert sink.causes[before:] == ["remote"]
    ch["ch4"].ppm_x10 = 30 * app.detector.cfg["ch4_pct_lel_x10"]
    run(30)
    assert app.detector.alarm_level("ch4") == 2
    bus.ask(request(ADDRESS, 6, M.COMMAND, M.CMD_HUSH))
    assert not app.detector.hushed  # the console's rule: no hush in a high methane alarm
    assert bus.regs(3, M.RESULT, 1) == [M.R_REFUSED]
