"""The valve controller's published Modbus register map (docs/modbus.md) on a real
ValveController driving the simulated self-closing valve, through the RTU slave.

The app around the controller is a small shim with ValveApp's entry points (a whole
ValveApp plus the bus does not fit a 112k heap on the 64-bit interpreter; the 32-bit
ESP32-like one is measured in host_tests/heap/test_modbus_heap.py and the virtual valve
behind a pseudo-terminal runs the real ValveApp)."""

from modbus_bus import Bus
from modbus_rig import ADDRESS, request, with_crc
from gasguard import modbus_regs as M
from gasguard.store import FileStore
from ptest import tmpdir
from gasguard.valve import ValveController
from simboard import SimClock
from simvalve import SimValveBoard


class App:
    KIND = "valve"
    identity = None

    def __init__(self, tag):
        self.clock = SimClock()
        self.board = SimValveBoard(self.clock)
        self.evs = []
        self.pollers = []
        self.sinks = []
        self.controller = ValveController(self.board, None, FileStore(tmpdir("mbv-" + tag)),
                                          self.evs.append)

    def uptime_s(self):
        return self.clock.elapsed_ms // 1000

    def last_close(self):
        for ev in reversed(self.evs):
            if ev.get("event") == "valve" and ev.get("state") == "closed":
                return ev
        return None

    def close_valve(self, source="remote"):
        self.controller.close("manual", source)
        return {"closing": True}

    def self_test(self):
        return {"started": True, "result": "pass"}

    def run(self, ms):
        for _ in range(ms // 10):
            self.clock.advance(10)
            self.board.step()
            self.controller.poll()
            for p in self.pollers:
                p.poll()


def test_valve_open_then_closed_by_modbus_never_opened():
    app = App("a")
    bus = Bus(app, lambda: app.run(10))
    app.run(500)
    st = bus.regs(4, 0, 1)[0]
    assert st & 1 == 0 and st & 4
    p, f = bus.regs(4, 1, 2)  # pressure Pa, flow 0.001 m3/h
    assert abs(p - 2000) <= 5 and f == M.UNKNOWN, (p, f)  # default config: no flow meter
    assert bus.regs(4, 3, 2) == [0, 0]
    assert bus.regs(4, M.COMMON, 2) == [M.MAP_VERSION, M.KIND_VALVE]
    assert bus.ask(request(ADDRESS, 6, M.COMMAND, M.CMD_HUSH)) == with_crc(bytes([ADDRESS, 0x86, 3]))
    f = request(ADDRESS, 6, M.COMMAND, M.CMD_CLOSE)
    assert bus.ask(f) == f
    app.run(3000)
    st = bus.regs(4, 0, 1)[0]
    assert st & 1 and not st & 4
    assert bus.regs(4, 3, 2) == [2, 5]  # closed, cause manual (source remote)
    assert bus.regs(4, 6, 1) == [1]
    for v in range(0, 0x10000, 0x0FF1):  # no value written anywhere reopens it
        bus.ask(request(ADDRESS, 6, M.COMMAND, v))
        bus.ask(request(ADDRESS, 6, v & 0xFF, v))
    app.run(500)
    assert bus.regs(4, 0, 1)[0] & 1 and not app.board.is_open


def test_valve_closed_by_under_pressure_and_a_fault():
    app = App("b")
    bus = Bus(app, lambda: app.run(10))
    app.run(500)
    app.board.pressure_pa = 500
    app.run(3000)
    assert bus.regs(4, 0, 1)[0] & 1
    assert bus.regs(4, 3, 2) == [2, 3]  # closed, under_pressure
    app.board.pressure_pa = -6000  # transducer wire broken
    app.run(2000)
    st, fb = bus.regs(4, 0, 1)[0], bus.regs(4, 5, 1)[0]
    assert st & 8 and fb & 2, (st, fb)
