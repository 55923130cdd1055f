"""The virtual valve controller: the real ValveApp on a simulated self-closing valve.

    micropython boards/sim/virtual_valve.py --state DIR [--speed N] [--reset-cause C]
                                             [--button] [--board-name NAME]
                                             [--rs485 PTY [--rs485-address N]]

The valve's counterpart of virtual_device.py (same options, console, exit codes; the
console and argument parsing are imported from there). `gasguard sim --serial pty
--device valve` runs it on a pseudo-terminal. The world around the valve (the mechanism
of boards/sim/simvalve.py: it closes by itself on over/under-pressure and excess flow and
latches; only a hand reopens it) is set with the simulation-only console command SIM:

    SIM PRESSURE <kPa>           line pressure at the inlet (normal supply: 2)
    SIM FLOW <m3/h>              gas flow through the valve while it is open
    SIM HAND <reset|close>       a hand on the knob: reopen (only while the line pressure
                                 is back inside the band) or close
    SIM BUTTON <0|1>             the local button (short press = close, hold 3 s = pairing)
    SIM FAULT pressure <open|short|none>   break or short the pressure transducer wiring
    SIM FRAME <hex>              a radio frame from a stranger on the valve's ESP-NOW
                                 channel (forged, replayed, garbage: rejected and counted)
    SIM SPEED <n>                simulated ms per real ms
    SIM ADVANCE <s>              jump the simulated clock forward (0..600 s, 20 ms steps)
    SIM STATE?                   the mechanism, the coil, the line, simulated time

The board has the ESP-NOW radio (on a simulated air with no detector: the link is
"unpaired" until paired) and an analog flow transducer (default config
{"valve": {"flow_mode": "analog"}} unless DIR/config.json says otherwise).
The valve's position and the line survive a REBOOT (DIR/valve_world.json): a latched
valve stays closed while its controller restarts.
"""

import json
import sys

from ballast import device_share
from virtual_device import (_SHARED, ConsoleBoard, SimCommand, hold_device_heap, power_on,
                            run_paced, start)

_SHARED += device_share("gasguard.boot", "gasguard.devices")
from gasguard.devices import build  # noqa: E402
from simboard import SimAnalogIn, SimClock, SimPin  # noqa: E402
from simvalve import SimValveBoard  # noqa: E402

WORLD = "/valve_world.json"
STEP_MS = 20
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
STRANGER_MAC = b"\x02\x00\x00\x00\x00\x66"
DEFAULT_CONFIG = {"valve": {"flow_mode": "analog"}}


class VirtualValveBoard(SimValveBoard, ConsoleBoard):
    UID = b"\x24\x0a\xc4\x00\x5a\x1e"

    def __init__(self, clock, console, reset_cause, button, world=None, radio=None):
        SimValveBoard.__init__(self, clock, radio, None)
        self.console_board(console, reset_cause, button)
        self.pressure_fault = None  # None, "open", "short"
        vcfg = self.vcfg
        from gasguard.valve import pa_to_uv

        self.pressure = SimAnalogIn(lambda: self._pressure_uv(pa_to_uv(vcfg, self.pressure_pa)))
        for name in ("led_green", "led_red"):
            setattr(self, name, SimPin(name, SimPin.OUT))
        if world:
            self.pressure_pa = int(world.get("pressure_pa", self.pressure_pa))
            self.flow_m3h_x1000 = int(world.get("flow_m3h_x1000", self.flow_m3h_x1000))
            if not world.get("is_open", True):
                self.is_open = False
                self.closed_by = world.get("closed_by")
                self.switch.set_input(self.closed_level)

    def _pressure_uv(self, uv):
        if self.pressure_fault == "open":
            return 0
        if self.pressure_fault == "short":
            return 3100000
        return uv

    def world(self):
        return {"is_open": self.is_open, "closed_by": self.closed_by,
                "pressure_pa": self.pressure_pa, "flow_m3h_x1000": self.flow_m3h_x1000}



class ValveSim(SimCommand):
    """The SIM console command of the virtual valve (never on hardware)."""

    MAX_ADVANCE_S = 600
    ADVANCE_STEP_MS = STEP_MS

    def __init__(self, board, clock, speed):
        SimCommand.__init__(self, board, clock, speed)
        self.air = None

    def advance(self, ms):
        step(self.clock, self.board, self.app, ms)

    def __call__(self, svc, rest):
        from gasguard.service_proto import E_ARG, E_STATE, ServiceError

        a = rest.split()
        b = self.board
        sub = a[0].upper() if a else ""
        if sub in ("PRESSURE", "FLOW") and len(a) == 2:
            try:
                v = float(a[1])
            except ValueError:
                raise ServiceError(E_ARG, "%s must be a number" % sub.lower())
            hi = 50 if sub == "PRESSURE" else 100
            if not 0 <= v <= hi:
                raise ServiceError(E_ARG, "%s must be in 0..%d" % (sub.lower(), hi))
            if sub == "PRESSURE":
                b.pressure_pa = int(v * 1000 + 0.5)
                return {"pressure_kpa": v}
            b.flow_m3h_x1000 = int(v * 1000 + 0.5)
            return {"flow_m3h": v}
        if sub == "HAND" and len(a) == 2 and a[1] in ("reset", "close"):
            if a[1] == "close":
                if not b.is_open:
                    raise ServiceError(E_STATE, "the valve is already closed")
                b.manual_close()
                return {"hand": "close"}
            if b.is_open:
                raise ServiceError(E_STATE, "the valve is already open")
            if not b.manual_reset():
                raise ServiceError(E_STATE, "the latch does not release while the line pressure "
                                            "is outside the band (SIM PRESSURE 2 first)")
            return {"hand": "reset"}
        if sub == "FAULT" and len(a) == 3 and a[1] == "pressure" and a[2] in ("open", "short", "none"):
            b.pressure_fault = None if a[2] == "none" else a[2]
            return {"sensor": "pressure", "fault": a[2]}
        if sub == "FRAME" and len(a) == 2:
            try:
                data = bytes(int(a[1][i:i + 2], 16) for i in range(0, len(a[1]), 2))
            except ValueError:
                data = b""
            if not data or len(a[1]) % 2 or len(data) > 250:
                raise ServiceError(E_ARG, "frame must be 1..250 bytes of hex")
            self.air.inject(STRANGER_MAC, VALVE_MAC, data)
            return {"injected": len(data)}
        r = self.common(sub, a)
        if r is not None:
            return r
        if sub == "STATE?":
            return {"elapsed_ms": self.clock.elapsed_ms, "speed": self.speed,
                    "pressure_pa": b.pressure_pa, "flow_m3h_x1000": b.flow_m3h_x1000,
                    "is_open": b.is_open, "closed_by": b.closed_by, "trip_coil": b.trip.value(),
                    "trips_seen": b.trips_seen, "openings": b.openings,
                    "pressure_fault": b.pressure_fault, "button": b.button.value()}
        raise ServiceError(E_ARG, "usage: SIM PRESSURE|FLOW|HAND|BUTTON|FAULT|SPEED|ADVANCE|STATE? ...")


def step(clock, board, app, ms):
    clock.advance(ms)
    board.step()
    app.poll_core()


def load_json(path, default):
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return default


def save_world(root, board):
    try:
        with open(root + WORLD, "w") as f:
            f.write(json.dumps(board.world()))
    except OSError:
        pass


def main(argv):
    opts, root, store, console, rc = power_on(argv, "sim-valve")
    if rc is not None:
        return rc
    before = [m for m in sys.modules if m.startswith("gasguard.")]
    clock = SimClock()
    from simradio import SimAir

    air = SimAir(clock, 1, 0)
    board = VirtualValveBoard(clock, console, opts["reset_cause"], opts["button"],
                              load_json(root + WORLD, None), air.radio(VALVE_MAC))
    sim = ValveSim(board, clock, opts["speed"])
    sim.air = air
    ballast = hold_device_heap(opts, _SHARED, before)  # noqa: F841 (held while the device runs)
    app = build("valve", board, store, load_json(root + "/config.json", DEFAULT_CONFIG),
                opts["board_name"])
    start(app, sim, opts, "valve")
    saved = [board.world()]

    def turn(ms, more):  # in slices: the controller sees every debounce and sample period
        step(clock, board, app, ms)

    def keep_world():
        w = board.world()
        if w != saved[0]:
            saved[0] = w
            save_world(root, board)

    rc = run_paced(board, console, sim, app, STEP_MS, turn, keep_world)
    save_world(root, board)
    return rc


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    except Exception as e:  # stdout is the console: put the crash where the host sees it
        sys.print_exception(e, sys.stderr)
        raise
    sys.exit(rc)
