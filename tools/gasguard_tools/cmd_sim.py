"""`gasguard sim`: run simulated devices on the real firmware.

    gasguard sim --serial pty [--device detector|valve] [--state DIR] [--speed N]
                 [--link PATH] [--button] [--rs485-link PATH [--rs485-address N]]
    gasguard sim --rs485-bus PATH [--devices detector:1,detector:2,valve:3]

starts the virtual detector (boards/sim/virtual_device.py: DetectorApp on the simulated
board, on the MicroPython unix port) or, with --device valve, the virtual valve
controller (boards/sim/virtual_valve.py: ValveApp on the simulated self-closing valve)
and exposes its service console on a pseudo-terminal. The path is printed (`serial: /dev/pts/N`); every host tool takes it as
--port exactly like a USB serial port. Like a real board, the virtual one
  - restarts its application after REBOOT (and counts boots, reset cause soft_reset),
  - boots into the MicroPython REPL after MAINT (maintenance mode), where mpremote
    works with `resume`, with the board's flash folder (--state) as its filesystem;
    leaving the REPL (soft reset, Ctrl-D) starts the application again,
  - restarts after a crash with reset cause "watchdog".
It stays up until Ctrl-C.

Other modes (a detector + valve pair over a simulated radio, a broker) are added next to
`--serial pty` in `run()`; the pty plumbing is in VirtualSerialDevice, which tests use
directly.
"""

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from . import BOARDS, ROOT, ptys
from .runtime import (ToolError, UsageError, add_micropython_argument, firmware_mpy_path,
                      micropython_exe)

VIRTUAL_DEVICE = BOARDS / "sim" / "virtual_device.py"
VIRTUAL_VALVE = BOARDS / "sim" / "virtual_valve.py"
SCRIPTS = {"detector": VIRTUAL_DEVICE, "valve": VIRTUAL_VALVE}
EXIT_REBOOT = 75
EXIT_MAINTENANCE = 76
# The factory key of simulated devices. SIMULATION ONLY: real devices get their key
# from the production line (docs/calibration-procedure.md).
SIM_FACTORY_KEY = "5349 4d2d 4f4e 4c59 2067 6173 6775 6172 6420 6661 6374 6f72 7920 6b65 7920 2121"
SIM_FACTORY_KEY = SIM_FACTORY_KEY.replace(" ", "")


class VirtualSerialDevice:
    """A virtual board whose console is a pty; the firmware runs in a child micropython.

    start() returns the pty path. The bridge thread copies bytes between the user's pty
    and the child's pty (both raw) and restarts the child like a board resets.
    """

    def __init__(self, state, speed=1.0, button=False, factory_key=SIM_FACTORY_KEY,
                 config=None, stderr=None, tau=8.0, link=None, log=None, device="detector",
                 micropython=None, rs485=None, rs485_address=1, heap=None):
        if device not in SCRIPTS:
            raise ToolError("unknown virtual device %r (detector or valve)" % (device,))
        self.device = device
        self.exe = micropython_exe(micropython)
        self.heap = heap  # the board's GC heap (-X heapsize), e.g. 112k; the app then runs from .mpy
        self.state = Path(state)
        self.speed = speed
        self.button = button
        self.tau = tau
        self.link = link
        self.rs485 = rs485  # the device end of an Rs485Bus (gasguard_tools.rs485_bus)
        self.rs485_address = rs485_address
        self.stderr = stderr
        self.log = log or (lambda msg: None)
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "data").mkdir(exist_ok=True)
        if factory_key:
            key = bytes.fromhex(factory_key)
            kp = self.state / "data" / "factory.key"
            if not kp.exists():
                kp.write_bytes(key)
        if config is not None:
            (self.state / "config.json").write_text(json.dumps(config))
        self.proc = None
        self.mode = None
        self.boots = 0
        self.crashes = 0
        self._stop = threading.Event()
        self._thread = None
        self._master = None
        self._slave = None
        self._cmaster = None
        self.port = None
        self.error = None

    # -------------------------------------------------------------- lifecycle
    def start(self):
        self._master, self._slave, self.port = ptys.open_raw(self.link)
        self._spawn("app", "power_on")
        self._thread = threading.Thread(target=self._run, name="gasguard-sim-pty", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._kill()
        ptys.close((self._master, self._slave), self.link)
        self._master = self._slave = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def freeze(self):
        """Simulate a hung device: the firmware stops (SIGSTOP) but the port stays open."""
        os.kill(self.proc.pid, 19)

    def thaw(self):
        os.kill(self.proc.pid, 18)

    # -------------------------------------------------------------- children
    def _env(self, mode):
        env = dict(os.environ)
        lib = self.state / "lib"
        if mode == "repl":
            parts = [".", ".frozen", str(lib)]
        elif (lib / "gasguard").is_dir():
            # deployed by `gasguard flash`: run what is on the board's flash
            parts = [str(lib), str(BOARDS / "sim"), ".frozen"]
        elif self.heap:
            parts = firmware_mpy_path() + [".frozen"]  # as deployed: from .mpy
        else:
            parts = [str(ROOT / "firmware"), str(BOARDS / "sim"), ".frozen"]
        env["MICROPYPATH"] = os.pathsep.join(parts)
        return env

    def _spawn(self, mode, reset_cause):
        cm, cs = pty.openpty()
        tty.setraw(cs)
        device_heap = None
        heap = self.heap
        if heap and mode != "repl":
            # the device sees exactly --heap bytes, as on the chip: the simulated board and
            # console get HARNESS_HEAP on top and hold the rest back (boards/sim/ballast.py)
            from .sim_pair import HARNESS_HEAP, heap_bytes

            device_heap = heap_bytes(heap)
            heap = device_heap + HARNESS_HEAP
        argv = [self.exe] + (["-X", "heapsize=" + str(heap)] if heap else [])
        if mode != "repl":
            script = SCRIPTS[self.device]
            if self.heap and not (self.state / "lib" / "gasguard").is_dir():
                argv += ["-m", script.stem]  # its .mpy, like the rest of the board
            else:
                argv.append(str(script))
            argv += ["--state", str(self.state),
                    "--speed", str(self.speed), "--reset-cause", reset_cause,
                    "--tau", str(self.tau)]
            if self.button:
                argv.append("--button")
            if self.rs485:
                argv += ["--rs485", self.rs485, "--rs485-address", str(self.rs485_address)]
            if device_heap:
                argv += ["--device-heap", str(device_heap)]
        self.proc = subprocess.Popen(
            argv, stdin=cs, stdout=cs, stderr=self.stderr, env=self._env(mode),
            cwd=str(self.state), start_new_session=True, close_fds=True,
        )
        os.close(cs)
        if self._cmaster is not None:
            os.close(self._cmaster)
        self._cmaster = cm
        self.mode = mode
        if mode == "app":
            self.boots += 1
        self.log("virtual device: %s started (pid %d, reset cause %s)"
                 % ("REPL (maintenance)" if mode == "repl" else "application", self.proc.pid,
                    reset_cause))

    def _kill(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, 18)  # a frozen child must be able to die
            except OSError:
                pass
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._cmaster is not None:
            try:
                os.close(self._cmaster)
            except OSError:
                pass
            self._cmaster = None

    def _to_user(self, data):
        ptys.write_quietly(self._master, data)

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # report, never hang the caller
            self.error = "%s: %s" % (type(e).__name__, e)
            self.log("virtual device bridge failed: " + self.error)

    def _loop(self):
        while not self._stop.is_set():
            cm = self._cmaster
            fds = [self._master] + ([cm] if cm is not None else [])
            r, _, _ = select.select(fds, [], [], 0.05)
            if self._master in r:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data and cm is not None and self.alive():
                    try:
                        os.write(cm, data)
                    except OSError:
                        pass
            if cm is not None and cm in r:
                try:
                    data = os.read(cm, 4096)
                except OSError:
                    data = b""
                if data:
                    self._to_user(data)
            if self.proc is not None and self.proc.poll() is not None:
                self._drain_child()
                self._restart(self.proc.returncode)

    def _drain_child(self):
        cm = self._cmaster
        while cm is not None:
            r, _, _ = select.select([cm], [], [], 0.02)
            if not r:
                break
            try:
                data = os.read(cm, 4096)
            except OSError:
                break
            if not data:
                break
            self._to_user(data)

    def _restart(self, rc):
        if self._stop.is_set():
            return
        if self.mode == "repl":
            self._spawn("app", "soft_reset")
        elif rc == EXIT_MAINTENANCE:
            self._spawn("repl", "soft_reset")
        elif rc == EXIT_REBOOT:
            self._spawn("app", "soft_reset")
        else:
            self.log("virtual device: application exited with code %s: restarting (reset cause "
                     "watchdog)" % rc)
            self.crashes += 1
            if self.crashes > 5:
                self.error = "the virtual device keeps crashing (exit code %s)" % rc
                self.log(self.error)
                self._stop.set()
                return
            time.sleep(0.5)
            self._spawn("app", "watchdog")


def add_arguments(p):
    p.add_argument("mode", nargs="?", choices=["pair"], default="pair",
                   help="pair (default): a detector and a valve controller on the real firmware, "
                        "a gas leak, the alarm, the valve closing, messages to a broker")
    p.add_argument("--serial", choices=["pty"],
                   help="instead: one virtual device with its service console on a pseudo-terminal")
    p.add_argument("--device", choices=sorted(SCRIPTS),
                   help="with --serial pty: which device (default detector; valve = the valve "
                        "controller on a simulated self-closing valve, SIM PRESSURE/FLOW/HAND)")
    p.add_argument("--state", help="the virtual board's flash folder (kept between runs; "
                   "default: a fresh temporary folder)")
    p.add_argument("--speed", type=float,
                   help="simulated seconds per real second (default 20 for pair, 1 for --serial)")
    p.add_argument("--link", help="also make a symlink to the pty at this path (e.g. ./ttyGG)")
    p.add_argument("--button", action="store_true",
                   help="hold the button at boot (factory mode without a key)")
    p.add_argument("--factory-key", default=SIM_FACTORY_KEY,
                   help="factory key (hex) installed in a new virtual board "
                        "(default: the documented simulation key)")
    p.add_argument("--config", help="device config JSON file to install on the board")
    p.add_argument("--rs485-link", metavar="PATH",
                   help="with --serial pty: also expose the device's RS-485 port (Modbus RTU "
                        "slave, docs/modbus.md) on a second pty, symlinked at PATH")
    p.add_argument("--rs485-address", type=int, default=1, metavar="N",
                   help="its Modbus address when the device config has no modbus section "
                        "(default 1)")
    p.add_argument("--rs485-bus", metavar="PATH",
                   help="instead: several virtual devices on one simulated RS-485 line, the "
                        "controller's end symlinked at PATH (see --devices)")
    p.add_argument("--devices", default="detector:1,valve:2", metavar="KIND:ADDR,...",
                   help="with --rs485-bus: the devices on the line and their Modbus addresses "
                        "(default detector:1,valve:2)")
    p.add_argument("--tau", type=float, default=8.0,
                   help="sensor response time constant in seconds (default 8)")
    add_micropython_argument(p)
    from .sim_pair import add_pair_arguments

    add_pair_arguments(p)


def _stop_on_signals():
    """`kill PID` (and Ctrl-C even when started in the background by a script, where SIGINT
    is ignored) ends the simulation through KeyboardInterrupt, so the children are stopped."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop)


def _run_bus(args):
    """`gasguard sim --rs485-bus PATH --devices ...`: the virtual devices on one line."""
    import shutil
    import sys
    import tempfile
    import time
    from pathlib import Path

    from .rs485_bus import Rs485Bus, parse_devices

    devices = parse_devices(args.devices)
    tmp = None
    root = args.state
    if not root:
        tmp = root = tempfile.mkdtemp(prefix="gasguard-bus-")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    bus = Rs485Bus(args.rs485_bus, log=log)
    devs = []
    try:
        for kind, addr in devices:
            end = bus.add_device()
            devs.append(VirtualSerialDevice(
                Path(root) / ("%s-%d" % (kind, addr)), speed=args.speed, button=args.button,
                factory_key=args.factory_key, tau=args.tau, log=log, device=kind,
                micropython=args.micropython, rs485=end, rs485_address=addr))
        port = bus.start()
        print("rs485: %s" % port, flush=True)
        print("rs485 link: %s" % args.rs485_bus, flush=True)
        for (kind, addr), d in zip(devices, devs):
            print("device %s:%d serial: %s state: %s" % (kind, addr, d.start(), d.state),
                  flush=True)
        print("try:   mbpoll -m rtu -b 9600 -P even -a %d -t 3 -r 1 -c 3 -1 %s"
              % (devices[0][1], args.rs485_bus), flush=True)
        print("stop:  Ctrl-C", flush=True)
        while bus.error is None and all(d.error is None for d in devs):
            time.sleep(0.2)
        raise ToolError(bus.error or [d.error for d in devs if d.error][0])
    except KeyboardInterrupt:
        return 0
    finally:
        for d in devs:
            d.stop()
        bus.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args):
    _stop_on_signals()
    if getattr(args, "device", None) and args.serial != "pty":
        raise UsageError("--device chooses the virtual device of --serial pty")
    if getattr(args, "rs485_link", None) and args.serial != "pty":
        raise UsageError("--rs485-link is the second port of --serial pty")
    if getattr(args, "rs485_bus", None):
        if args.speed is None:
            args.speed = 1.0
        return _run_bus(args)
    if args.serial == "pty":
        if args.speed is None:
            args.speed = 1.0
        return run_pty(args)
    from .sim_pair import run_pair

    if args.speed is None:
        args.speed = 20.0
    return run_pair(args)


def run_pty(args):
    tmp = None
    state = args.state
    if not state:
        tmp = tempfile.mkdtemp(prefix="gasguard-sim-")
        state = tmp
    config = None
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as e:
            raise ToolError("cannot read --config %s: %s" % (args.config, e))
    try:
        bytes.fromhex(args.factory_key or "")
    except ValueError:
        raise ToolError("--factory-key must be hex")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    bus = None
    rs485 = None
    if args.rs485_link:
        from .rs485_bus import Rs485Bus

        bus = Rs485Bus(args.rs485_link, log=log)
        rs485 = bus.add_device()
        bus.start()
    dev = VirtualSerialDevice(state, speed=args.speed, button=args.button,
                              factory_key=args.factory_key, config=config, tau=args.tau,
                              link=args.link, log=log, device=args.device or "detector",
                              micropython=args.micropython, rs485=rs485,
                              rs485_address=args.rs485_address, heap=args.heap)
    port = dev.start()
    print("serial: %s" % port, flush=True)
    if args.link:
        print("link: %s" % args.link, flush=True)
    if bus is not None:
        print("rs485: %s" % bus.port, flush=True)
        print("rs485 link: %s" % args.rs485_link, flush=True)
    print("state: %s" % state, flush=True)
    print("try:   gasguard diag --port %s status" % (args.link or port), flush=True)
    if dev.device == "valve":
        print("world: SIM PRESSURE 0.5 (under-pressure close), SIM PRESSURE 2 + SIM HAND reset",
              flush=True)
    print("stop:  Ctrl-C", flush=True)
    try:
        while dev.error is None:
            time.sleep(0.2)
        raise ToolError(dev.error)
    except KeyboardInterrupt:
        return 0
    finally:
        dev.stop()
        if bus is not None:
            bus.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
