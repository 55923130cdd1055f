"""A detector link and a valve controller joined by the simulated air (tests, bench, sim).

    rig = InterlockRig(seed=1, loss_pct=30)
    rig.run(10000)                 # 10 s of 10 ms steps: heartbeats, sync
    rig.det.close("ch4_high")      # what Detector._close_interlocks does
    rig.run_until(lambda: not rig.board.is_open, 20000)
Both ends run the real firmware (gasguard.espnow_link, gasguard.valve) with their own
stores; reboot_valve()/reboot_detector() rebuild an end from its store, as a power
cycle would. MicroPython-compatible.
"""

# The big modules first: on a small heap they need room before it fragments.
from gasguard.espnow_link import DetectorLink, ValveLink, provision
from gasguard.store import FileStore

from simboard import SimClock
from simradio import SimAir

DET_MAC = b"\x02\x00\x00\x00\x00\x01"
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
KEY = bytes(range(32))


class InterlockRig:
    def __init__(self, root, seed=1, loss_pct=0, dup_pct=0, delay_ms=(0, 0), reorder_pct=0, link=None,
                 valve_cfg=None, paired=True, step_ms=10, clock=None, keep_log=True, stub_valve=False):
        self.clock = clock or SimClock()
        self.air = SimAir(self.clock, seed, loss_pct, dup_pct, delay_ms, reorder_pct)
        self.air.keep_log = keep_log
        self.step_ms = step_ms
        self.link_cfg = link
        self.valve_cfg = dict(valve_cfg or {})
        if link is not None:
            self.valve_cfg["link"] = link
        self.det_store = FileStore(root + "/det")
        self.valve_store = FileStore(root + "/valve")
        if paired:
            provision(self.det_store, "D", KEY, VALVE_MAC)
            provision(self.valve_store, "V", KEY, DET_MAC)
        self.events = []  # (elapsed_ms, "D" | "V", event)
        self._n = 0
        self.det_radio = self.air.radio(DET_MAC)
        self.valve_radio = self.air.radio(VALVE_MAC)
        self.stub = stub_valve
        if stub_valve:
            self.board = StubValve(self.clock)
        else:
            from simvalve import SimValveBoard

            self.board = SimValveBoard(self.clock, self.valve_radio, self.valve_cfg)
        self.det = None
        self.valve = None
        self.det_on = True
        self.reboot_detector()
        self.reboot_valve()

    def _emit(self, who):
        def emit(ev):
            self.events.append((self.clock.elapsed_ms, who, ev))
        return emit

    def _rand(self, n):
        self._n += 1
        b = bytearray(n)
        x = self._n * 2654435761 & 0xFFFFFFFF
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            b[i] = (x >> 16) & 0xFF
        return bytes(b)

    def reboot_detector(self):
        self.det_radio.reset()
        self.det = DetectorLink(self.det_radio, self.clock, self.det_store, self.link_cfg, self._emit("D"), self._rand)

    def reboot_valve(self):
        self.valve_radio.reset()
        if self.stub:
            self.valve = StubController(self.board, self.valve_radio, self.valve_store, self.link_cfg,
                                        self._emit("V"), self._rand)
            return
        from gasguard.valve import ValveController

        self.valve = ValveController(self.board, self.valve_cfg, self.valve_store, self._emit("V"), self._rand)

    def power_detector(self, on):
        """Switch the detector off (it neither sends nor hears) or on again (a reboot)."""
        self.det_radio.active = bool(on)
        if on and not self.det_on:
            self.reboot_detector()
        self.det_on = bool(on)

    def step(self):
        self.clock.advance(self.step_ms)
        self.board.step()
        self.valve.poll()
        if self.det_on:
            self.det.poll()

    def run(self, ms):
        for _ in range(ms // self.step_ms):
            self.step()

    def run_until(self, cond, limit_ms):
        """Step until cond() is true; return the elapsed ms, or None at the limit."""
        t = 0
        while t < limit_ms:
            if cond():
                return t
            self.step()
            t += self.step_ms
        return t if cond() else None

    def valve_events(self, kind="valve"):
        return [e for (_t, who, e) in self.events if who == "V" and e["event"] == kind]


class StubValve:
    """A valve without mechanics for link-only tests: the trip closes it at once."""

    def __init__(self, clock):
        self.clock = clock
        self.is_open = True

    def step(self):
        pass

    def manual_reset(self):
        if self.is_open:
            return False
        self.is_open = True
        return True


class StubController:
    """ValveLink with the smallest controller behind it (no gasguard.valve import)."""

    def __init__(self, board, radio, store, link_cfg, emit, rand):
        self.board = board
        self.emit = emit
        self.link = ValveLink(radio, board.clock, store, link_cfg, emit, rand, self._close, self._state)
        self.cause = None

    def _close(self, request):
        if self.board.is_open:
            self.board.is_open = False
            self.cause = "interlock"
            self.emit({"event": "valve", "state": "closed", "cause": "interlock", "source": request})

    def _state(self):
        return ("open" if self.board.is_open else "closed"), (self.cause or "none")

    def pair_button(self):
        self.link.pair_button()

    @property
    def state(self):
        return self._state()[0]

    def poll(self):
        if self.board.is_open:
            self.cause = None
        self.link.poll()
