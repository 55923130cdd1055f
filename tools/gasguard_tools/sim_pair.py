"""`gasguard sim` (default mode): a detector and a valve controller on the real firmware.

Runs boards/sim/sim_pair.py twice on MicroPython, one process per device, each with its own
heap (--heap, as on two chips), joined by the simulated ESP-NOW air: loopback UDP through
AirRelay here, which forwards the frames the senders did not lose (--loss) and keeps both
simulated clocks in step at --speed. Each device reports over real sockets to an MQTT
broker, the embedded one (gasguard_tools.broker) unless --broker is given. What the devices
do is printed as it happens, then what reached the broker and each device's heap: the least
free heap between loop turns (after a collection) and the largest free block then
(micropython.mem_info()'s "max free sz", which the devices print and this side reads).
"""

import collections
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import BOARDS, FIRMWARE, ROOT, SCENARIOS
from .cmd_replay import DEVICES, parse_scenario
from .runtime import ToolError, command, firmware_mpy_path

RUNNER = BOARDS / "sim" / "sim_pair.py"
DEFAULT_SCENARIO = SCENARIOS / "pair_leak.csv"

DEVICES.setdefault("pair", {
    "runner": "sim_pair.py",
    "numeric": ("ch4_ppm", "co_ppm", "pressure_kpa", "flow_m3h"),
    "text": {"valve_hand": ("", "reset", "close")},
    "ranges": {"ch4_ppm": (0, 1000000), "co_ppm": (0, 100000), "pressure_kpa": (-100, 1000),
               "flow_m3h": (0, 1000)},
    "actions": ("valve_hand",),
})


def add_pair_arguments(p):
    p.add_argument("--broker", metavar="HOST:PORT",
                   help="MQTT broker (numeric IPv4); default: start an embedded local broker")
    p.add_argument("--scenario", metavar="CSV", help="timeline (default docs/scenarios/pair_leak.csv)")
    p.add_argument("--loss", type=int, default=10, help="radio frame loss %% (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the radio and the keys' nonces")
    p.add_argument("--json", action="store_true",
                   help="print raw JSON lines; the last one is the summary")
    p.add_argument("--heap", metavar="SIZE",
                   help="each device's own heap, e.g. 112k as on an ESP32-WROOM: the device "
                        "loads its deploy set from .mpy, as deployed, and the simulator's own "
                        "objects run on top of that heap (docs/runtime.md); default: the "
                        "interpreter's")


def describe(ev):
    kind = ev.get("event")
    dev = ev.get("dev", "?")
    if kind == "alarm":
        what = "%s ALARM level %s %s" % (ev["gas"].upper(), ev["level"], ev["state"].upper())
    elif kind == "valve":
        what = "valve %s (cause %s%s)" % (ev["state"].upper(), ev.get("cause"),
                                         ", from " + str(ev["source"]) if ev.get("source") else "")
    elif kind == "interlock":
        what = "interlock %s (%s%s)" % (ev.get("state"), ev.get("cause"),
                                        ", via " + ev["via"] if ev.get("via") else "")
    elif kind == "fault":
        what = "fault %s %s" % (ev.get("code"), ev.get("state"))
    else:
        rest = " ".join("%s=%s" % (k, ev[k]) for k in sorted(ev) if k not in ("t", "dev", "event"))
        what = "%s %s" % (kind, rest)
    return "t=%5ss  %-8s  %s" % (ev.get("t"), dev, what)


def _sim_device_key():
    """The simulated devices' key (SIMULATION ONLY), from the one place it is defined."""
    for p in (str(FIRMWARE), str(BOARDS / "sim")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import sim_pair as device_side

    return device_side.DEVICE_KEY


class BrokerWatch:
    """Subscribes to <base>/# and keeps every message; plays the platform's part of the
    active identifier: a registration gets a signed acknowledgement on identity_down."""

    def __init__(self, host, port, base="gasguard"):
        import paho.mqtt.client as mqtt

        self.q = queue.Queue()
        self.messages = []
        self.base = base
        self.acks = 0
        self.key = _sim_device_key()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(base + "/#", qos=1)
        c.on_message = self._on_message
        try:
            c.connect(host, port, keepalive=30)
        except OSError as e:
            raise ToolError("cannot connect to the broker %s:%d: %s" % (host, port, e))
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, m):
        payload = bytes(m.payload)
        self.q.put((m.topic, payload, m.retain))
        if m.topic.endswith("/identity") and b'"t":"reg"' in payload:
            from gasguard.id_platform import platform_ack

            try:
                ack = platform_ack(self.key, payload, int(time.time()))
            except Exception:  # a registration we cannot verify gets no acknowledgement
                return
            client.publish(m.topic + "_down", ack, qos=1)
            self.acks += 1

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                break
        self.messages.extend(out)
        return out

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


BROADCAST = b"\xff" * 6
SLICE_MS = 100  # boards/sim/sim_pair.SLICE_MS: simulated time between two meetings
_MAX_FREE = re.compile(r"max free sz: (\d+)")


class AirRelay:
    """The simulated ESP-NOW air between the device processes (boards/sim/netair.py).

    Forwards every frame to the device with that MAC, a broadcast (the pairing request) to
    every other one (frames are lost at the sender, which knows whether its unicast was
    acknowledged) and keeps time: a device that has finished
    a slice waits for the next one until every device has, and until real time reaches the
    slice at `speed`. Runs in a thread; port is where the devices send."""

    def __init__(self, n_devices, speed):
        self.n = n_devices
        self.speed = float(speed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = {}  # mac -> address
        self.mac = {}  # address -> mac
        self.waiting = set()
        self.gone = set()
        self.slices = 0
        self.t0 = None
        self.stats = {"delivered": 0, "unreachable": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gasguard-sim-air", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _send(self, data, to):
        try:
            self.sock.sendto(data, to)
        except OSError:
            pass  # that device has gone

    def _go(self):
        live = set(self.mac) - self.gone
        if not live or not live <= self.waiting:
            return
        self.slices += 1
        due = self.t0 + self.slices * SLICE_MS / 1000.0 / self.speed
        late = due - time.monotonic()
        if late > 0:
            time.sleep(late)
        self.waiting.clear()
        for a in live:
            self._send(b"G", a)

    def _run(self):
        while not self._stop.is_set():
            try:
                data, a = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            kind = data[:1]
            if kind == b"H" and len(data) == 7:
                self.addr[data[1:7]] = a
                self.mac[a] = data[1:7]
                if len(self.mac) == self.n:
                    self.t0 = time.monotonic()
                    for x in self.mac:
                        self._send(b"G", x)
            elif kind == b"F" and a in self.mac and len(data) > 7 and data[1:7] == BROADCAST:
                # ESP-NOW's broadcast (the pairing request): every other device on the air
                for to in self.mac:
                    if to != a and to not in self.gone:
                        self._send(b"F" + self.mac[a] + data[7:], to)
                        self.stats["delivered"] += 1
            elif kind == b"F" and a in self.mac and len(data) > 7:
                to = self.addr.get(data[1:7])
                if to is None or to in self.gone:
                    self.stats["unreachable"] += 1
                    continue
                self._send(b"F" + self.mac[a] + data[7:], to)
                self.stats["delivered"] += 1
            elif kind == b"T" and a in self.mac:
                self.waiting.add(a)
                self._go()
            elif kind == b"E" and a in self.mac:
                self.gone.add(a)
                self.waiting.discard(a)
                self._go()


def deploy_mpy_path(kind, tier):
    """firmware_mpy_path() with only what `gasguard flash` installs on that device and tier
    (its deploy set): a module the device does not have fails with ImportError, as on the
    chip. The simulated board's modules after it."""
    from .cmd_package import deploy_set
    from .prime import write_names

    fw, sim = firmware_mpy_path()
    out = Path(fw).parent / ("deploy-%s-%s" % (kind, tier))
    if not (out / ".complete").exists():
        tmp = out.with_name(out.name + ".tmp%d" % os.getpid())
        (tmp / "gasguard").mkdir(parents=True, exist_ok=True)
        for f in deploy_set(kind, tier) + ["gasguard/ticks.py"]:  # ticks: the sim board's clock
            shutil.copy(str(Path(fw) / f[:-3]) + ".mpy", str(tmp / "gasguard"))
        write_names(tmp / "gasguard", kind, tier)  # as `gasguard flash` deploys it
        (tmp / ".complete").write_text("")
        try:
            tmp.rename(out)
        except OSError:  # another run finished first: use its copy
            shutil.rmtree(str(tmp), ignore_errors=True)
    return [str(out), sim]


class DeviceProcess:
    """One device's MicroPython process: its stdout lines go to a shared queue."""

    def __init__(self, kind, args, state, air_port, broker, rows, lines):
        self.kind = kind
        mp = getattr(args, "micropython", None)
        heap = heap_bytes(getattr(args, "heap", None))
        # the factory line first, in its own process (none of its code is in the device's heap)
        argv, env = command("micropython", RUNNER,
                            ["--factory", "--device", kind, "--state", state, "--broker", broker],
                            micropython=mp, mpy=bool(heap))
        r = subprocess.run(argv, env=env, cwd=str(ROOT), capture_output=True, text=True,
                           timeout=120)
        if r.returncode:
            raise ToolError("the simulated %s's factory step failed: %s"
                            % (kind, (r.stdout + r.stderr).strip()[-1500:]))
        extra = ["--provisioned"]
        path = None
        if heap:
            # the device sees exactly --heap bytes: the harness (simulated board, air,
            # scenario) gets HARNESS_HEAP on top and holds the rest back (boards/sim/ballast.py);
            # the firmware is the device's deploy set, as `gasguard flash` installs it
            extra += ["--device-heap", heap]
            path = deploy_mpy_path(kind, TIERS[kind])
            heap += HARNESS_HEAP
        argv, env = command("micropython", RUNNER,
                            ["--device", kind, "--state", state, "--air", "127.0.0.1:%d" % air_port,
                             "--broker", broker, "--loss", args.loss, "--seed", args.seed] + extra,
                            heap=heap, micropython=mp, path=path)
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
        try:
            self.proc.stdin.write("".join(json.dumps(r) + "\n" for r in rows))
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it died before reading the scenario: failure() says why
        self.max_free_blocks = None  # least "max free sz" seen in its mem_info() lines
        self.tail = collections.deque(maxlen=8)  # its last non-JSON lines (a traceback)
        self.summary = None
        self.eof = False
        threading.Thread(target=self._read, args=(lines,), daemon=True).start()

    def _read(self, lines):
        for line in self.proc.stdout:
            lines.put((self, line))
        lines.put((self, None))

    def note(self, line):
        """A non-JSON line: mem_info() output (the largest free block, in GC blocks)."""
        self.tail.append(line.rstrip())
        m = _MAX_FREE.search(line)
        if m:
            n = int(m.group(1))
            if self.max_free_blocks is None or n < self.max_free_blocks:
                self.max_free_blocks = n

    def failure(self):
        rc = self.proc.poll()
        if rc is None or (rc == 0 and self.summary is not None):
            return None
        # MicroPython prints an uncaught exception on stdout
        err = "\n".join([self.proc.stderr.read()[-2000:].strip()]
                        + [x for x in self.tail if not x.startswith((" No. of", "mem:", "stack:", "GC:"))])
        return "the simulated %s stopped (exit %s): %s" % (self.kind, rc, err.strip())

    def heap(self):
        h = (self.summary or {}).get("heap") or {}
        blocks = self.max_free_blocks
        return {"size": h.get("size"), "min_free": h.get("min_free"),
                "max_block": None if blocks is None else blocks * h.get("block", 16)}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


TIERS = {"detector": "mid", "valve": "M"}  # what boards/sim/sim_pair.Device builds
HARNESS_HEAP = 160 * 1024  # room for the harness above the device's heap (Ballast holds the rest)


def heap_bytes(v):
    """--heap SIZE (bytes, or with k / m) as a number of bytes; None without one."""
    if not v:
        return None
    t = str(v).strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(t[-1:], 1)
    try:
        n = int(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise ToolError("--heap must be a size such as 112k or 114688, got %r" % v)
    if n < 16 * 1024:
        raise ToolError("--heap %s is too small for any device (at least 16k)" % v)
    return n


def merge_summaries(det, valve, relay):
    """The pair's summary line from the two devices' own ones."""
    d, v = det.summary, valve.summary
    radio = {"sent": d["radio"]["sent"] + v["radio"]["sent"],
             "dropped": d["radio"]["dropped"] + v["radio"]["dropped"],
             "overflow": d["radio"]["overflow"] + v["radio"]["overflow"]}
    radio.update(relay.stats)
    return {"sim": "end", "t": max(d["t"], v["t"]), "valve": v["valve"], "cause": v["cause"],
            "link": v["link"], "detector_alarm": d["detector_alarm"], "radio": radio,
            "outbox_left": [d["outbox_left"], v["outbox_left"]],
            "published": [d["published"], v["published"]],
            "registered": {"detector": d["registered"], "valve": v["registered"]},
            "heap": {"detector": det.heap(), "valve": valve.heap()}}


def run_pair(args, out=None):
    out = out or sys.stdout
    scenario = args.scenario or str(DEFAULT_SCENARIO)
    rows, end_ms = parse_scenario(scenario, "pair")
    broker = None
    if args.broker:
        try:
            host, port = args.broker.rsplit(":", 1)
            port = int(port)
        except ValueError:
            raise ToolError("--broker must be HOST:PORT, got %r" % args.broker)
    else:
        from .broker import Broker

        broker = Broker("127.0.0.1", 0)
        host, port = "127.0.0.1", broker.start_in_thread()
        out.write("embedded MQTT broker on %s:%d\n" % (host, port))
    watch = BrokerWatch(host, port)
    from .cmd_monitor import Printer

    printer = Printer("gasguard", out=out)
    state = tempfile.mkdtemp(prefix="gasguard-sim-")
    heap = getattr(args, "heap", None)
    out.write("running the detector and the valve firmware, each in its own MicroPython%s "
              "(%s, %gx real time, %d%% radio loss)\n"
              % (" with a %s heap" % heap if heap else "", scenario, args.speed, args.loss))
    relay = AirRelay(2, args.speed).start()
    lines = queue.Queue()
    devs = []
    events = []
    try:
        for kind in ("detector", "valve"):
            devs.append(DeviceProcess(kind, args, state, relay.port, "%s:%d" % (host, port),
                                      rows, lines))
        open_devs = len(devs)
        failure = None
        while open_devs and failure is None:
            try:
                dev, line = lines.get(timeout=0.1)
            except queue.Empty:
                dev, line = None, ""
            for topic, payload, retain in watch.drain():
                # telemetry is counted in the summary; events and state are shown
                if not args.json and not topic.endswith("/telemetry"):
                    out.write("   broker <- ")
                    printer.handle(topic, payload, retain)
            if dev is None:
                failure = next((f for f in (d.failure() for d in devs) if f), None)
                continue
            if line is None:
                open_devs -= 1
                dev.proc.wait(timeout=30)
                failure = dev.failure()
                continue
            if not line.startswith("{"):
                dev.note(line)
                continue
            ev = json.loads(line)
            if ev.get("sim") == "end":
                dev.summary = ev
            elif ev.get("sim") == "device":
                out.write("%s device %s\n" % (ev["dev"], ev["id"]))
            else:
                events.append(ev)
                out.write(line if args.json else describe(ev) + "\n")
            out.flush()
        if failure:
            raise ToolError(failure)
        time.sleep(0.5)
        watch.drain()
    finally:
        for d in devs:
            d.kill()
        relay.stop()
        watch.stop()
        if broker is not None:
            broker.stop()
    summary = merge_summaries(devs[0], devs[1], relay)
    args.result = {"events": events, "summary": summary, "messages": watch.messages,
                   "invalid": printer.invalid, "devices": {d.kind: d.summary for d in devs}}
    if args.json:
        out.write(json.dumps(summary) + "\n")
        return 0
    return report(events, summary, watch.messages, out)


def report(events, summary, messages, out):
    kinds = {}
    for topic, _p, _r in messages:
        k = topic.rsplit("/", 1)[-1]
        kinds[k] = kinds.get(k, 0) + 1
    alarm = next((e for e in events if e.get("event") == "alarm" and e.get("state") == "on"), None)
    closed = next((e for e in events if e.get("event") == "valve" and e.get("state") == "closed"), None)
    out.write("\nsummary\n")
    out.write("  first alarm      %s\n" % (describe(alarm) if alarm else "none"))
    out.write("  valve closed     %s\n" % (describe(closed) if closed else "no"))
    out.write("  valve at the end %s (cause %s), link %s\n" % (summary["valve"], summary["cause"], summary["link"]))
    out.write("  radio            %s\n" % summary.get("radio"))
    out.write("  broker received  %d messages: %s\n" % (len(messages), ", ".join(
        "%s %d" % kv for kv in sorted(kinds.items()))))
    out.write("  outbox left      %s (0 = every event delivered)\n" % summary.get("outbox_left"))
    out.write("  active identity  %s\n" % ", ".join(
        "%s %s" % (d, "registered" if r else "not registered")
        for d, r in sorted((summary.get("registered") or {}).items())))
    for dev, h in sorted((summary.get("heap") or {}).items()):
        out.write("  heap %-11s %s bytes, at least %s free, largest free block %s\n"
                  % (dev, h["size"], h["min_free"], h["max_block"]))
    return 0
