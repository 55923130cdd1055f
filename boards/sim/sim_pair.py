"""The simulated detector + valve pair: both devices' real firmware in one MicroPython process.

    micropython boards/sim/sim_pair.py --state DIR --broker IP:PORT [--speed N] [--loss PCT]
                                       [--seed N] [--until S] [--no-broker]

The detector (DetectorApp on the simulated board, with the ESP-NOW interlock sink) and the
valve controller (ValveApp on SimValveBoard) share one SimClock and one simulated air
(SimAir: loss, seeded). Each has its own flash folder and its own Reporter talking to the
broker over REAL sockets. Pairing is by factory provisioning (shared key in both stores).

The scenario comes on stdin as JSON lines in the `gasguard replay` runner form (the host
validated the CSV): {"t_ms": ms, "<column>_milli": value*1000, ...}, values holding until
the next row:
    ch4_ppm, co_ppm      gas at the detector's sensors
    pressure_kpa         line pressure at the valve
    flow_m3h             flow through the valve
    valve_hand           "reset" (a hand reopens the valve) or "close" (a hand closes it)
Simulated time runs --speed times real time; everything that happens is printed as one
JSON object per line: {"t": s, "dev": "detector"|"valve", "event": ...}, then
{"sim": "end", ...summary}.
"""

import json
import sys
import time

from gasguard import VERSION, identifier
from gasguard.app import DetectorApp
from gasguard.devices import ValveApp, attach_active_id, attach_interlock, attach_reporter
from gasguard.interlock_keys import provision
from gasguard.store import FileStore
from simboard import SimClock, SimConsole
from simradio import SimAir
from simvalve import SimValveBoard
from virtual_device import VirtualBoard

DET_MAC = b"\x02\x00\x00\x00\x00\x01"
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
# SIMULATION ONLY: the pair key and device keys real units get at the factory. The
# host side plays the platform with DEVICE_KEY (it acknowledges registrations).
PAIR_KEY = b"sim-pair-key-not-for-devices!!!!"
DEVICE_KEY = b"sim-device-key-not-for-devices!!"
STEP_MS = 10


def parse_args(argv):
    o = {"state": None, "broker": None, "speed": 20.0, "loss": 0, "seed": 1, "until": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--no-broker":
            o["broker"] = None
            i += 1
            continue
        if i + 1 >= len(argv):
            raise SystemExit("sim_pair: %s needs a value" % a)
        v = argv[i + 1]
        if a == "--state":
            o["state"] = v
        elif a == "--broker":
            host, port = v.rsplit(":", 1)
            o["broker"] = (host, int(port))
        elif a == "--speed":
            o["speed"] = float(v)
        elif a == "--loss":
            o["loss"] = int(v)
        elif a == "--seed":
            o["seed"] = int(v)
        elif a == "--until":
            o["until"] = int(v)
        else:
            raise SystemExit("sim_pair: unknown option %s" % a)
        i += 2
    if not o["state"]:
        raise SystemExit("sim_pair: --state DIR is required")
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


class Pair:
    def __init__(self, o):
        root = o["state"].rstrip("/")
        self.clock = SimClock()
        self.air = SimAir(self.clock, o["seed"], o["loss"])
        det_store = FileStore(root + "/detector")
        valve_store = FileStore(root + "/valve")
        provision(det_store, "D", PAIR_KEY, VALVE_MAC)
        provision(valve_store, "V", PAIR_KEY, DET_MAC)
        factory_calibration(det_store)

        # the detector: alarm path + console (unused here) + wireless interlock
        self.dboard = VirtualBoard(self.clock, SimConsole(), 8.0, "power_on", False)
        dcfg = {"detector": {"profile": "cn", "tier": "mid"}}
        self.det = DetectorApp(self.dboard, det_store, dcfg, board_name="sim-detector")
        self.det.sinks.append(Printer(self, "detector", self.det))
        self.link = attach_interlock(self.det, self.air.radio(DET_MAC), det_store, {}, Rand(o["seed"]))

        # the valve controller: mechanics + controller (+ its link)
        self.vboard = SimValveBoard(self.clock, self.air.radio(VALVE_MAC))
        self.valve = ValveApp(self.vboard, valve_store, {}, Rand(o["seed"] + 1))
        self.valve.sinks.append(Printer(self, "valve", self.valve))

        self.reporters = []
        self.active = {}
        if o["broker"] is not None:
            import socket

            host, port = o["broker"]
            from gasguard.identity import IdentityStore

            host, port = o["broker"]
            for app, cat, serial in ((self.det, "GD", 1), (self.valve, "GV", 2)):
                # the factory line: identity written once, read back, locked
                dev_id = identifier.make("88.118.8", cat, "M", "261129", serial)
                ids = IdentityStore(app.store)
                if ids.status() == "blank":
                    ids.provision({"id": dev_id, "model": "GG-SIM-" + cat, "hw_rev": "1.0"},
                                  DEVICE_KEY)
                    ids.lock(dev_id)
                cfg = {"report": {"mqtt": {"host": host, "port": port, "keepalive_s": 30},
                                  "interval_s": 30}}
                rep = attach_reporter(app, self.clock, app.store, ids.identity_info(VERSION), cfg,
                                      socket, ids.device_key(), Rand(o["seed"] + serial + 10))
                self.reporters.append(rep)
                act = attach_active_id(app, rep, ids, {})
                self.active[app.KIND] = act
                self.say({"sim": "device", "dev": app.KIND, "id": dev_id,
                          "active_id": act is not None})

    def say(self, d):
        sys.stdout.write(json.dumps(d) + "\n")

    def apply(self, row):
        if "ch4_ppm_milli" in row:
            self.dboard.gas["ch4"].target = row["ch4_ppm_milli"] / 1000
        if "co_ppm_milli" in row:
            self.dboard.gas["co"].target = row["co_ppm_milli"] / 1000
        if "pressure_kpa_milli" in row:
            self.vboard.pressure_pa = row["pressure_kpa_milli"]
        if "flow_m3h_milli" in row:
            self.vboard.flow_m3h_x1000 = row["flow_m3h_milli"]
        hand = row.get("valve_hand")
        if hand == "reset":
            self.vboard.manual_reset()
        elif hand == "close":
            self.vboard.manual_close()

    def step(self):
        self.clock.advance(STEP_MS)
        self.vboard.step()
        self.valve.poll()
        self.det.poll_core()

    def registered(self):
        return all(a is None or a.registered for a in self.active.values())

    def delivered(self):
        return all(len(r.outbox) == 0 for r in self.reporters) if self.reporters else True


class Printer:
    """An app sink that prints every stamped event with the device name."""

    name = None

    def __init__(self, pair, dev, app):
        self.pair = pair
        self.dev = dev
        self.app = app

    def event(self, ev):
        d = {"t": ev.get("t"), "dev": self.dev}
        for k in ev:
            if k not in ("t", "seq", "boot"):
                d[k] = ev[k]
        self.pair.say(d)


def main(argv):
    o = parse_args(argv)
    rows = read_scenario()
    if not rows:
        raise SystemExit("sim_pair: empty scenario on stdin")
    pair = Pair(o)
    until_s = o["until"] if o["until"] is not None else rows[-1]["t_ms"] // 1000
    speed = o["speed"]
    i = 0
    sim_ms = 0
    t0 = time.ticks_ms()
    while sim_ms <= until_s * 1000:
        while i < len(rows) and rows[i]["t_ms"] <= sim_ms:
            pair.apply(rows[i])
            i += 1
        pair.step()
        sim_ms += STEP_MS
        # pace: simulated time runs `speed` times real time
        ahead = int(sim_ms / speed) - time.ticks_diff(time.ticks_ms(), t0)
        if ahead > 0:
            time.sleep_ms(ahead)
    # let the outboxes drain and registrations finish (bounded, real time: a loaded host
    # or a slow broker makes the round trips late, never the alarm path)
    drain_ms = 0
    while pair.reporters and not (pair.delivered() and pair.registered()) and drain_ms < 30000:
        pair.step()
        time.sleep_ms(STEP_MS)
        drain_ms += STEP_MS
    for r in pair.reporters:
        r.poll()
    vst = pair.valve.status()
    summary = {"sim": "end", "t": sim_ms // 1000, "valve": vst["valve"], "cause": vst["cause"],
               "link": vst["link"], "detector_alarm": pair.det.detector.status()["ch4"]["alarm"],
               "radio": pair.air.stats,
               "outbox_left": [len(r.outbox) for r in pair.reporters],
               "published": [r.published for r in pair.reporters],
               "registered": dict((k, bool(a and a.registered)) for k, a in pair.active.items())}
    pair.say(summary)
    for r in pair.reporters:
        r.close()  # retained "offline (shutdown)", then DISCONNECT: no Last Will
    time.sleep_ms(200)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
