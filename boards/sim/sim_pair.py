"""One device of the simulated detector + valve pair, in its own MicroPython process.

    micropython boards/sim/sim_pair.py --device detector|valve --state DIR --air IP:PORT
                                       [--broker IP:PORT] [--loss PCT] [--seed N]
                                       [--until S] [--heap-every MS]

`gasguard sim` starts one process per device, each with its own heap (-X heapsize), as on
two chips, and the simulated ESP-NOW air between them (netair.NetAir: loopback UDP through
the host's relay, which also keeps the two clocks in step). The detector is DetectorApp on
the simulated board with the ESP-NOW interlock sink; the valve controller is ValveApp on
SimValveBoard. Each has its own flash folder (DIR/detector, DIR/valve) and, with --broker,
its own Reporter talking to the broker over REAL sockets. Pairing is by factory
provisioning (shared key in both stores).

The scenario comes on stdin as JSON lines in the `gasguard replay` runner form (the host
validated the CSV): {"t_ms": ms, "<column>_milli": value*1000, ...}, values holding until
the next row; each device takes its own columns:
    ch4_ppm, co_ppm      gas at the detector's sensors
    pressure_kpa         line pressure at the valve
    flow_m3h             flow through the valve
    valve_hand           "reset" (a hand reopens the valve) or "close" (a hand closes it)
Everything that happens is printed as one JSON object per line: {"t": s, "dev": ...,
"event": ...}, then {"sim": "end", "dev": ..., ...this device's summary, "heap": {...}}.

Heap: every --heap-every simulated ms (default 1000) the device collects garbage and
samples gc.mem_free(); at each new minimum (and every 60 samples) it prints
micropython.mem_info(), whose "max free sz" (in GC blocks) the host reads as the largest
free block. So min_free is the least free heap between loop turns, after a collection.
"""

import gc
import json
import sys
import time

_alloc = getattr(gc, "mem_alloc", lambda: 0)  # (CPython: the host reads DEVICE_KEY here)
gc.collect()
_RUNNER = _alloc()  # this script and the interpreter's own: the harness's
# the firmware modules the harness shares with the device are the device's: loaded first,
# and counted (ballast.Ballast) as the device's heap, not the harness's
from gasguard import VERSION, lazy  # noqa: E402
from gasguard import ticks as _ticks  # noqa: E402,F401
from gasguard.store import FileStore  # noqa: E402

gc.collect()
_SHARED = _alloc() - _RUNNER
from ballast import Ballast  # noqa: E402
from simboard import SimClock, SimConsole  # noqa: E402

DET_MAC = b"\x02\x00\x00\x00\x00\x01"
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
MACS = {"detector": DET_MAC, "valve": VALVE_MAC}
# SIMULATION ONLY: the pair key and device keys real units get at the factory. The
# host side plays the platform with DEVICE_KEY (it acknowledges registrations).
PAIR_KEY = b"sim-pair-key-not-for-devices!!!!"
DEVICE_KEY = b"sim-device-key-not-for-devices!!"
STEP_MS = 10  # one loop turn
SLICE_MS = 100  # simulated time between two meetings at the relay (10 loop turns)
DRAIN_REAL_MS = 30000


def _addr(v):
    host, port = v.rsplit(":", 1)
    return (host, int(port))


def parse_args(argv):
    o = {"device": None, "state": None, "air": None, "broker": None, "loss": 0, "seed": 1,
         "until": None, "heap_every": 1000, "factory": False, "provisioned": False,
         "device_heap": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--no-broker", "--factory", "--provisioned"):
            if a == "--no-broker":
                o["broker"] = None
            else:
                o[a[2:]] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            raise SystemExit("sim_pair: %s needs a value" % a)
        v = argv[i + 1]
        if a == "--device":
            if v not in MACS:
                raise SystemExit("sim_pair: --device detector or valve")
            o["device"] = v
        elif a == "--state":
            o["state"] = v
        elif a == "--air":
            o["air"] = _addr(v)
        elif a == "--broker":
            o["broker"] = _addr(v)
        elif a == "--loss":
            o["loss"] = int(v)
        elif a == "--seed":
            o["seed"] = int(v)
        elif a == "--until":
            o["until"] = int(v)
        elif a == "--heap-every":
            o["heap_every"] = int(v)
        elif a == "--device-heap":
            o["device_heap"] = int(v)
        else:
            raise SystemExit("sim_pair: unknown option %s" % a)
        i += 2
    if not o["state"] or not o["device"]:
        raise SystemExit("sim_pair: --device and --state DIR are required")
    return o


class Rand:
    """Deterministic bytes for nonces and jitter (seeded: the simulation is repeatable)."""

    def __init__(self, seed):
        self.x = (seed * 2654435761 + 1) & 0x7FFFFFFF

    def __call__(self, n):
        b = bytearray(n)
        for i in range(n):
            self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
            b[i] = (self.x >> 16) & 0xFF
        return bytes(b)


def read_scenario():
    rows = []
    for line in sys.stdin:
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def say(d):
    sys.stdout.write(json.dumps(d) + "\n")


def factory_calibration(store):
    """What the production line does with reference gas (gasguard calibrate): zero and
    span each channel against this simulated unit's true sensor response."""
    from gasguard import calibration
    from gasguard.sensors import from_config
    from virtual_device import SENSOR_TRUTH

    rec = calibration.CalibrationRecord()
    for gas, nominal, span_x10 in (("ch4", "mq4", 50000), ("co", "ec_co", 3000)):
        truth = from_config(SENSOR_TRUTH[gas])
        rec = rec.with_zero({"model": nominal}, truth.uv(0), 20261129, "sim-factory")
        rec = rec.with_span({"model": nominal}, truth.uv(span_x10), span_x10, 20261129, "sim-factory")
    calibration.save(store, rec)


def device_store(o, kind):
    return FileStore(o["state"].rstrip("/") + "/" + kind)


def factory(kind, o):
    """The factory line (its own process in `gasguard sim`, as on the line: none of its
    code is in the device's heap): the ESP-NOW pairing, the calibration, and with a broker
    the identity written once, read back and locked."""
    from gasguard import identifier
    from gasguard.identity import IdentityStore
    from gasguard.interlock_keys import provision

    store = device_store(o, kind)
    if kind == "detector":
        provision(store, "D", PAIR_KEY, VALVE_MAC)
        factory_calibration(store)
    else:
        provision(store, "V", PAIR_KEY, DET_MAC)
    if o["broker"] is not None:
        cat, serial = SERIALS[kind]
        ids = IdentityStore(store)
        if ids.status() == "blank":
            dev_id = identifier.make("88.118.8", cat, "M", "261129", serial)
            ids.provision({"id": dev_id, "model": "GG-SIM-" + cat, "hw_rev": "1.0"}, DEVICE_KEY)
            ids.lock(dev_id)


SERIALS = {"detector": ("GD", 1), "valve": ("GV", 2)}


def valve_levels(rows):
    """The valve transducers' uV for every line pressure and flow the scenario holds (and
    the defaults), computed before the device boots: the simulated valve then keeps plain
    numbers, not gasguard.valve_cfg (boot-only on the device)."""
    from gasguard.valve_cfg import flow_to_uv, pa_to_uv, valve_config

    c = valve_config(None)
    pa, flow = {2000}, {500, 0}
    for r in rows:
        if "pressure_kpa_milli" in r:
            pa.add(r["pressure_kpa_milli"])
        if "flow_m3h_milli" in r:
            flow.add(r["flow_m3h_milli"])
    out = ({p: pa_to_uv(c, p) for p in pa}, {f: flow_to_uv(c, f) for f in flow},
           3600 * 1000 * 1000 // int(c["supply_divider"] * 1000))
    return out


class Device:
    """One device as `gasguard sim` assembles it, on its own clock and radio."""

    def __init__(self, kind, o, clock, radio, out=say, board=None):
        self.kind = kind
        self.clock = clock
        self.out = out
        if not o.get("provisioned"):
            factory(kind, o)
        store = device_store(o, kind)
        from gasguard.devices import build

        if kind == "detector":
            # the detector: alarm path + console (unused here) + wireless interlock
            if board is None:
                from virtual_device import VirtualBoard

                board = VirtualBoard(clock, SimConsole(), 8.0, "power_on", False)
            self.board = board
            dcfg = {"detector": {"profile": "cn", "tier": "mid"}, "link": {}}
            self.app = build("detector", self.board, store, dcfg, "sim-detector",
                             lambda channel: radio, rand=Rand(o["seed"]))
            self.link = self.app.detector.interlocks[-1]  # the ESP-NOW link the builder added
        else:
            # the valve controller: mechanics + controller (+ its link)
            if board is None:
                from simvalve import SimValveBoard

                board = SimValveBoard(clock, radio)
            self.board = board
            self.app = build("valve", self.board, store, {}, rand=Rand(o["seed"] + 1))
        self.app.sinks.append(Printer(self.out, kind))
        self.reporter = None
        self.active = None
        if o["broker"] is not None:
            self._attach_reporting(o)

    def _attach_reporting(self, o):
        import socket

        from gasguard.devices import attach_active_id, attach_reporter

        app = self.app
        host, port = o["broker"]
        ids = app.identity
        cfg = {"report": {"mqtt": {"host": host, "port": port, "keepalive_s": 30},
                          "interval_s": 30}}
        self.reporter = attach_reporter(app, self.clock, app.store, ids.identity_info(VERSION),
                                        cfg, socket, ids.device_key(),
                                        Rand(o["seed"] + SERIALS[self.kind][1] + 10))
        self.active = attach_active_id(app, self.reporter, ids, {})
        self.out({"sim": "device", "dev": app.KIND, "id": (ids.load() or {}).get("id"),
                  "active_id": self.active is not None})

    def apply(self, row):
        if self.kind == "detector":
            if "ch4_ppm_milli" in row:
                self.board.gas["ch4"].target = row["ch4_ppm_milli"] / 1000
            if "co_ppm_milli" in row:
                self.board.gas["co"].target = row["co_ppm_milli"] / 1000
            return
        b = self.board
        if "pressure_kpa_milli" in row:
            b.pressure_pa = row["pressure_kpa_milli"]
        if "flow_m3h_milli" in row:
            b.flow_m3h_x1000 = row["flow_m3h_milli"]
        hand = row.get("valve_hand")
        if hand == "reset":
            b.manual_reset()
        elif hand == "close":
            b.manual_close()

    def step(self):
        """One loop turn: STEP_MS of simulated time, then the device's poll."""
        self.clock.advance(STEP_MS)
        if self.kind == "detector":
            self.app.poll_core()
        else:
            self.board.step()
            self.app.poll()

    def settled(self):
        """Every event delivered and the active identifier registered (or no reporting)."""
        r = self.reporter
        if r is None:
            return True
        return len(r.outbox) == 0 and (self.active is None or self.active.registered)

    def summary(self):
        d = {"sim": "end", "dev": self.kind}
        if self.kind == "detector":
            d["detector_alarm"] = self.app.detector.status()["ch4"]["alarm"]
        else:
            vst = self.app.status()
            d["valve"] = vst["valve"]
            d["cause"] = vst["cause"]
            d["link"] = vst["link"]
        r = self.reporter
        d["outbox_left"] = None if r is None else len(r.outbox)
        d["published"] = None if r is None else r.published
        d["registered"] = bool(self.active and self.active.registered)
        return d


class Printer:
    """An app sink that prints every stamped event with the device name."""

    name = None

    def __init__(self, out, dev):
        self.out = out
        self.dev = dev

    def event(self, ev):
        d = {"t": ev.get("t"), "dev": self.dev}
        for k in ev:
            if k not in ("t", "seq", "boot"):
                d[k] = ev[k]
        self.out(d)


class HeapWatch:
    """The least free heap between loop turns (after a collection), and mem_info() lines
    for the host to read the largest free block from."""

    def __init__(self, every_ms, ballast=None):
        self.every = every_ms // SLICE_MS or 1
        self.n = 0
        gc.collect()
        # the device's heap: --device-heap (the harness above it), else the whole process's
        self.size = ballast.size if ballast is not None else gc.mem_alloc() + gc.mem_free()
        self.min_free = gc.mem_free()
        self.block = 16 if sys.maxsize < (1 << 32) else 32  # bytes per GC block
        import micropython

        micropython.mem_info()

    def slice_done(self):
        self.n += 1
        if self.n % self.every:
            return
        gc.collect()
        free = gc.mem_free()
        if free < self.min_free or self.n % (60 * self.every) == 0:
            if free < self.min_free:
                self.min_free = free
            import micropython

            micropython.mem_info()

    def summary(self):
        return {"size": self.size, "min_free": self.min_free, "block": self.block}


def harness_board(kind, clock, radio, rows):
    """The simulated board, built before the device: whatever firmware code it needs to
    model the sensors (sensors, valve_cfg: boot-only on a device) is released again."""
    if kind == "detector":
        from virtual_device import VirtualBoard

        return VirtualBoard(clock, SimConsole(), 8.0, "power_on", False)
    from simvalve import SimValveBoard

    pa, flow, supply = valve_levels(rows)
    return SimValveBoard(clock, radio, levels=(lambda p: pa[p], lambda f: flow[f], supply))


def main(argv):
    o = parse_args(argv)
    kind = o["device"]
    if o["factory"]:
        factory(kind, o)
        say({"sim": "factory", "dev": kind})
        return 0
    from netair import NetAir

    shared = _SHARED
    if kind == "detector":
        # the simulated gas sensors are the firmware's models (the true response of this
        # unit): their classes are the device's resident sensing code
        gc.collect()
        a = gc.mem_alloc()
        from gasguard import sensing  # noqa: F401

        gc.collect()
        shared += gc.mem_alloc() - a
    rows = read_scenario()
    if not rows:
        raise SystemExit("sim_pair: empty scenario on stdin")
    clock = SimClock()
    air = NetAir(o["air"], MACS[kind], o["seed"], o["loss"])
    before = [m for m in sys.modules if m.startswith("gasguard.")]
    board = harness_board(kind, clock, air.radio, rows)
    # what the board's models needed (boot-only on the device): gone before the device boots
    lazy.release(*[m[9:] for m in sys.modules if m.startswith("gasguard.") and m not in before])
    ballast = None
    if o["device_heap"]:
        ballast = Ballast(o["device_heap"], gc.mem_alloc() - shared)
    lazy.prime()  # first, as the board's main.py does (the boot's names on an empty heap)
    dev = Device(kind, o, clock, air.radio, board=board)
    lazy.after_boot()  # as the board's main.py does before its loop
    heap = HeapWatch(o["heap_every"], ballast)
    until_ms = (o["until"] if o["until"] is not None else rows[-1]["t_ms"] // 1000) * 1000
    air.hello()
    air.wait()
    i = 0
    sim_ms = 0
    n = len(rows)
    while sim_ms <= until_ms:
        while i < n and rows[i]["t_ms"] <= sim_ms:
            dev.apply(rows[i])
            i += 1
        dev.step()
        sim_ms += STEP_MS
        if sim_ms % SLICE_MS == 0:
            heap.slice_done()
            air.barrier()
    # let the outbox drain and the registration finish (bounded, real time: a loaded host
    # or a slow broker makes the round trips late, never the alarm path)
    t0 = time.ticks_ms()
    while not dev.settled() and time.ticks_diff(time.ticks_ms(), t0) < DRAIN_REAL_MS:
        dev.step()
        sim_ms += STEP_MS
        time.sleep_ms(STEP_MS)
        if sim_ms % SLICE_MS == 0:
            heap.slice_done()
            air.barrier()
    if dev.reporter is not None:
        dev.reporter.poll()
    d = dev.summary()
    d["t"] = sim_ms // 1000
    d["radio"] = air.stats
    d["heap"] = heap.summary()
    d["modules"] = sorted(m for m in sys.modules if m.startswith("gasguard"))
    say(d)
    air.bye()
    if dev.reporter is not None:
        dev.reporter.close()  # retained "offline (shutdown)", then DISCONNECT: no Last Will
    time.sleep_ms(200)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
