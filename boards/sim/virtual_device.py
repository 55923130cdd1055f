"""The virtual detector: the real gasguard application on the simulated board.

    micropython boards/sim/virtual_device.py --state DIR [--speed N] [--reset-cause C]
                                              [--button] [--board-name NAME]
                                              [--rs485 PTY [--rs485-address N]]

Runs DetectorApp (detector, service console, event log) exactly as main.py does on the
ESP32, with the console on stdin/stdout (non-blocking through select.poll), the SimClock
advanced with real time (times --speed) and the gas at the sensors set by the
simulation-only console command SIM (never available on hardware):

    SIM GAS <ch4|co> <ppm>       the concentration at the sensor (it follows with a
                                 first-order response, tau = --tau seconds)
    SIM BUTTON <0|1>             the test/hush button
    SIM FAULT <ch4|co> <open|short|none>   break or short the sensor wiring
    SIM SPEED <n>                simulated ms per real ms
    SIM ADVANCE <s>              jump the simulated clock forward (in 250 ms steps)
    SIM STATE?                   gas, outputs, simulated time

The board's flash is DIR (like the ESP32's LittleFS root): DIR/data is the store,
DIR/config.json the device config. `gasguard sim --serial pty` runs this on a
pseudo-terminal and restarts it on REBOOT (exit code 75) or into the REPL after MAINT
(exit code 76), like a real board would.

The board has a wired pulse interlock on "valve_out" (the trip coil of a latching
shut-off valve), so ITEST and a real alarm close a (simulated) valve.

The simulated sensors are not the nominal ones: each unit has its own deviation
(SENSOR_TRUTH), so an uncalibrated device reads wrong and calibration has real work.
"""

import gc
import json
import sys
import time

import select

from ballast import Ballast, device_share

# the firmware modules the simulated board imports are the device's (--device-heap)
_SHARED = device_share("gasguard", "gasguard.lazy", "gasguard.ticks", "gasguard.store")
from simboard import SimAnalogIn, SimClock, SimPin, Xorshift32  # noqa: E402

EXIT_REBOOT = 75
EXIT_MAINTENANCE = 76

# How this simulated unit's sensors really respond (vs. the nominal models the firmware
# assumes): a methane element with a higher R0 and a CO cell with an offset zero and
# 10 % more sensitivity. Calibration has to find exactly this.
SENSOR_TRUTH = {
    "ch4": {"model": "mq4", "r0_ohm": 12000},
    "co": {"model": "ec_co", "zero_uv": 430000, "uv_per_ppm": 3520.0},
}
SUPPLY_UV = 2500000  # 5.0 V rail through the 2:1 divider

DEFAULT_CONFIG = {"detector": {"profile": "cn", "tier": "mid"}}


class StdioConsole:
    """sys.stdin/sys.stdout as the board console: read() never blocks."""

    def __init__(self):
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self.closed = False

    def read(self, n=64):
        out = None
        while n > 0:
            ev = self._poll.poll(0)
            if not ev:
                break
            if ev[0][1] & (select.POLLHUP | select.POLLERR) and not ev[0][1] & select.POLLIN:
                self.closed = True
                break
            b = self._in.read(1)
            if not b:
                self.closed = True
                break
            out = b if out is None else out + b
            n -= 1
        return out

    def write(self, data):
        try:
            self._out.write(data)
            self._out.flush()
        except AttributeError:
            pass
        except OSError:  # the host closed the port (board unplugged, sim stopped): not a crash
            self.closed = True
        return len(data)


class GasSource:
    """The concentration at one sensor, following its target with a first-order lag.

    Integer arithmetic in 0.01 ppm (`target` and `ppm` read and take ppm), the inverse
    model evaluated only when the reading changes: a read allocates nothing on the ESP32's
    object model (a float is a heap object there, and so is an int beyond 2**30)."""

    def __init__(self, gas, clock, tau_s):
        from gasguard.sensors import from_config  # boot-only on a device: `gasguard sim` releases it

        self.model = from_config(SENSOR_TRUTH[gas])
        self.clock = clock
        self.tau_ms = int(tau_s * 1000)
        self._target = 0  # 0.01 ppm
        self._c = 0  # 0.01 ppm, what the element sees now
        self.fault = None  # None, "open", "short"
        self._t = clock.elapsed_ms
        self._rng = Xorshift32(12345 + len(gas))
        self._x10 = -1  # the ppm x 10 the cached µV is for
        self._uv = 0

    @property
    def target(self):
        return self._target / 100

    @target.setter
    def target(self, ppm):
        self._target = int(ppm * 100 + 0.5)

    @property
    def ppm(self):
        return self._c / 100

    def _lag(self, dt):
        d = self._target - self._c
        tau = self.tau_ms
        if tau <= dt or -5 < d < 5:  # within 0.05 ppm: there
            self._c = self._target
            return
        a = -d if d < 0 else d
        step = (a // tau) * dt + (a % tau) * dt // tau  # a * dt // tau, inside 31 bits
        self._c += -step if d < 0 else step

    def __call__(self):
        now = self.clock.elapsed_ms
        dt = now - self._t
        self._t = now
        if dt > 0 and self._c != self._target:
            self._lag(dt)
        if self.fault == "open":
            return 0
        if self.fault == "short":
            return 3100000
        x10 = (self._c + 5) // 10
        if x10 != self._x10:
            self._x10 = x10
            self._uv = self.model.uv(x10)
        # small deterministic jitter (+-150 µV) so stability detection has something to do
        self._rng.step()
        return self._uv + self._rng.lo % 301 - 150


class ConsoleBoard:
    """What both virtual boards add to their simulated hardware: the console, the reset
    cause, the free heap, the chip id and REBOOT (the runner's exit code)."""

    UID = b"\x24\x0a\xc4\x00\x51\x7e"

    def console_board(self, console, reset_cause, button):
        self.console = console
        self.button = SimPin("button", SimPin.IN)
        self.button.set_input(1 if button else 0)
        self._reset_cause = reset_cause
        self.exit_code = None

    def reset_cause(self):
        return self._reset_cause

    def free_heap(self):
        gc.collect()  # as the ESP32 board does: the free heap after a collection
        return gc.mem_free()

    def unique_id(self):
        return self.UID

    def reboot(self):
        self.exit_code = EXIT_REBOOT


class VirtualBoard(ConsoleBoard):
    def __init__(self, clock, console, tau_s, reset_cause, button):
        self.clock = clock
        self.console_board(console, reset_cause, button)
        self.gas = {"ch4": GasSource("ch4", clock, tau_s), "co": GasSource("co", clock, tau_s)}
        self.adc_ch4 = SimAnalogIn(self.gas["ch4"])
        self.adc_co = SimAnalogIn(self.gas["co"])
        self.adc_supply = SimAnalogIn(SUPPLY_UV)
        for name in ("led_green", "led_yellow", "led_red", "buzzer", "relay", "heater", "valve_out"):
            pin = SimPin(name, SimPin.OUT)
            pin.clock = clock
            setattr(self, name, pin)


class SimCommand:
    """The SIM console command's common verbs (BUTTON, SPEED, ADVANCE); simulation
    control, refused on real hardware. A board's own verbs come first (its __call__)."""

    MAX_ADVANCE_S = 86400
    ADVANCE_STEP_MS = 250

    def __init__(self, board, clock, speed):
        self.board = board
        self.clock = clock
        self.speed = speed
        self.app = None

    def advance(self, ms):
        self.clock.advance(ms)
        self.app.poll_core()

    def common(self, sub, a):
        """The reply of a common verb, or None when `sub` is not one."""
        from gasguard.service_proto import E_ARG, ServiceError

        if sub == "BUTTON" and len(a) == 2 and a[1] in ("0", "1"):
            self.board.button.set_input(int(a[1]))
            return {"button": int(a[1])}
        if sub == "SPEED" and len(a) == 2:
            try:
                self.speed = max(0.0, min(1000.0, float(a[1])))
            except ValueError:
                raise ServiceError(E_ARG, "speed must be a number")
            return {"speed": self.speed}
        if sub == "ADVANCE" and len(a) == 2:
            try:
                s = int(a[1])
            except ValueError:
                raise ServiceError(E_ARG, "seconds must be an integer")
            if not 0 <= s <= self.MAX_ADVANCE_S:
                raise ServiceError(E_ARG, "seconds must be in 0..%d" % self.MAX_ADVANCE_S)
            for _ in range(s * 1000 // self.ADVANCE_STEP_MS):
                self.advance(self.ADVANCE_STEP_MS)
            return {"advanced_s": s}
        return None


class Sim(SimCommand):
    """The virtual detector's SIM command."""

    def __call__(self, svc, rest):
        from gasguard.service_proto import E_ARG, ServiceError

        a = rest.split()
        if not a:
            raise ServiceError(E_ARG, "usage: SIM GAS|BUTTON|FAULT|SPEED|ADVANCE|STATE? ...")
        sub = a[0].upper()
        if sub == "GAS" and len(a) == 3 and a[1] in self.board.gas:
            try:
                ppm = float(a[2])
            except ValueError:
                raise ServiceError(E_ARG, "ppm must be a number")
            if not 0 <= ppm <= 1000000:
                raise ServiceError(E_ARG, "ppm must be in 0..1000000")
            self.board.gas[a[1]].target = ppm
            return {"gas": a[1], "target_ppm": ppm}
        if sub == "FAULT" and len(a) == 3 and a[1] in self.board.gas and a[2] in ("open", "short", "none"):
            self.board.gas[a[1]].fault = None if a[2] == "none" else a[2]
            return {"gas": a[1], "fault": a[2]}
        r = self.common(sub, a)
        if r is not None:
            return r
        if sub == "STATE?":
            b = self.board
            return {
                "elapsed_ms": self.clock.elapsed_ms,
                "speed": self.speed,
                "gas": dict((g, {"target": s.target, "ppm": (s._c + 5) // 10 / 10.0,
                                 "fault": s.fault}) for g, s in b.gas.items()),
                "outputs": dict((n, getattr(b, n).value()) for n in
                                ("led_green", "led_yellow", "led_red", "buzzer", "relay",
                                 "valve_out")),
                "valve_pulses": b.valve_out.changes // 2,
                "button": b.button.value(),
            }
        raise ServiceError(E_ARG, "unknown SIM command (GAS, BUTTON, FAULT, SPEED, ADVANCE, STATE?)")


def parse_args(argv):
    opts = {"state": None, "speed": 1.0, "reset_cause": "power_on", "button": False,
            "tau": 8.0, "board_name": "sim-detector", "rs485": None, "rs485_address": 1,
            "device_heap": 0}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--button":
            opts["button"] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            raise SystemExit("virtual_device: %s needs a value" % a)
        v = argv[i + 1]
        if a == "--state":
            opts["state"] = v
        elif a == "--speed":
            opts["speed"] = float(v)
        elif a == "--tau":
            opts["tau"] = float(v)
        elif a == "--reset-cause":
            opts["reset_cause"] = v
        elif a == "--board-name":
            opts["board_name"] = v
        elif a == "--rs485":  # a pty (raw) as the RS-485 line: the Modbus slave on it
            opts["rs485"] = v
        elif a == "--rs485-address":  # used when the config has no modbus section
            opts["rs485_address"] = int(v)
        elif a == "--device-heap":  # the device's own heap in bytes (ballast.py)
            opts["device_heap"] = int(v)
        else:
            raise SystemExit("virtual_device: unknown option %s" % a)
        i += 2
    if not opts["state"]:
        raise SystemExit("virtual_device: --state DIR is required")
    return opts


def load_config(root):
    try:
        with open(root + "/config.json") as f:
            return json.loads(f.read())
    except OSError:
        return DEFAULT_CONFIG


def hold_device_heap(opts, shared, before):
    """With --device-heap, as the board's main.py starts: the collector every 8 KB, the
    board-model code released (boot-only on a device), and the harness's share held back
    so that the device sees exactly its heap (ballast.py). Returns the Ballast or None."""
    if not opts["device_heap"]:
        return None
    from gasguard import lazy

    gc.threshold(8192)
    lazy.release(*[m[9:] for m in sys.modules if m.startswith("gasguard.") and m not in before])
    ballast = Ballast(opts["device_heap"], gc.mem_alloc() - shared)
    lazy.prime()
    return ballast


def power_on(argv, board_name):
    """The board's first steps: its options, its flash (DIR/data) and console, and the boot
    decision. Returns (opts, root, store, console, exit code or None to run the app)."""
    from gasguard.boot import boot_mode
    from gasguard.store import FileStore

    opts = parse_args(argv)
    if "--board-name" not in argv:
        opts["board_name"] = board_name
    root = opts["state"].rstrip("/")
    store = FileStore(root + "/data")
    console = StdioConsole()
    rc = None
    if boot_mode(store) == "maintenance":
        console.write(b"gasguard: maintenance mode: application not started (REPL)\n")
        rc = EXIT_MAINTENANCE
    return opts, root, store, console, rc


def main(argv):
    shared = _SHARED + device_share("gasguard.boot", "gasguard.devices")
    from gasguard.devices import build

    opts, root, store, console, rc = power_on(argv, "sim-detector")
    if rc is not None:
        return rc
    before = [m for m in sys.modules if m.startswith("gasguard.")]
    clock = SimClock()
    board = VirtualBoard(clock, console, opts["tau"], opts["reset_cause"], opts["button"])
    sim = Sim(board, clock, opts["speed"])
    ballast = hold_device_heap(opts, shared, before)  # noqa: F841 (held while the device runs)
    app = build("detector", board, store, load_config(root), opts["board_name"])
    # the valve shut-off output: a wired pulse interlock (a latching valve's trip coil)
    from gasguard.wired_interlock import WiredInterlock

    app.detector.interlocks.append(WiredInterlock(board.valve_out, None, clock, {"mode": "pulse"},
                                                  emit=app.emit))
    start(app, sim, opts, "detector")

    def turn(ms, more):  # in slices so the detector sees every sample period even when fast
        clock.advance(ms)
        if more:
            app.poll_core()

    return run_paced(board, console, sim, app, 100, turn)


def start(app, sim, opts, what):
    """The board's last steps before its loop: the SIM command, the RS-485 port, the boot-only
    code released (with --device-heap, as main.py does), Ctrl-C a byte, the banner."""
    from gasguard import VERSION, lazy

    app.service.handlers["SIM"] = sim
    sim.app = app
    if opts["rs485"]:
        from sim_rs485 import attach_pty

        attach_pty(app, opts["rs485"], opts["rs485_address"])
    if opts["device_heap"]:
        lazy.after_boot()  # as the board's main.py does before its loop
    try:
        import micropython

        micropython.kbd_intr(-1)  # as on the device: Ctrl-C is a byte, not an interrupt
    except (ImportError, AttributeError):
        pass
    app.board.console.write(("gasguard %s virtual %s ready (GGSP/1, boot %d)\n"
                             % (VERSION, what, app.boot_count)).encode())


def run_paced(board, console, sim, app, slice_ms, turn, after_poll=None):
    """The board's loop: simulated time follows real time times sim.speed, in slices of at
    most slice_ms (turn(ms, more_to_come)), then one app.poll(); until REBOOT or hang-up."""
    last = time.ticks_ms()
    carry = 0.0
    while board.exit_code is None and not console.closed:
        now = time.ticks_ms()
        real = time.ticks_diff(now, last)
        last = now
        carry += real * sim.speed
        n = int(carry)
        carry -= n
        while n > 0:
            d = slice_ms if n > slice_ms else n
            n -= d
            turn(d, n > 0)
        app.poll()
        if after_poll is not None:
            after_poll()
        time.sleep_ms(5)
    return board.exit_code or 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    except Exception as e:  # stdout is the console: put the crash where the host sees it
        sys.print_exception(e, sys.stderr)
        raise
    sys.exit(rc)
