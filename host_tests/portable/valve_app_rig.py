"""The simulated valve board and a ValveApp rig shared by the test_valve_app* modules (not a
test module: kept apart so each test module compiles and runs within a 112k heap)."""

import json

from ptest import tmpdir

from gasguard.store import FileStore
from simboard import SimClock, SimConsole, SimPin
from simvalve import SimValveBoard


class Board(SimValveBoard):
    def __init__(self, clock, **kw):
        SimValveBoard.__init__(self, clock, None, None, **kw)
        self.console = SimConsole()
        self.button = SimPin("button", SimPin.IN)
        self.reboots = 0

    def reset_cause(self):
        return "power_on"

    def reboot(self):
        self.reboots += 1


class NoIdentity:
    """gasguard.identity is too big to compile next to the app in a 112k heap (the device
    runs precompiled .mpy); ID?/PROV are covered by the identity and e2e tests."""

    locked = False

    def load(self):
        return None


class Rig:
    def __init__(self, tag, config=None, root=None, closed=False, **kw):
        from gasguard.valve_app import ValveApp

        self.root = root or tmpdir("vapp-" + tag)
        self.clock = SimClock()
        self.board = Board(self.clock, **kw)
        if closed:  # the valve stayed latched closed while the controller was off
            self.board.is_open = False
            self.board.step()
        self.store = FileStore(self.root)
        self.app = ValveApp(self.board, self.store, config, identity=NoIdentity(),
                            board_name="test-valve")

    def run(self, ms, step=10):
        for _ in range(ms // step):
            self.clock.advance(step)
            self.board.step()
            self.app.poll()

    def ask(self, line):
        self.board.console.feed(line + "\n")
        self.run(30)
        out = self.board.console.take_output().decode().strip()
        status, _, body = out.partition(" ")
        if status == "OK":
            return "OK", json.loads(body)
        return status, body

    def valve_events(self):
        return [(e["state"], e.get("cause"), e.get("source")) for e in self.app.events(50)
                if e["event"] == "valve"]
