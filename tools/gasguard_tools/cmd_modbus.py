"""`gasguard modbus`: read a device's Modbus register map (docs/modbus.md) for a technician.

    gasguard modbus --port /dev/ttyUSB0 [--address 1] [--baud 9600] [--parity even] [--json]

The port is a USB-RS485 adapter on the line (or a virtual device's `--rs485-link` pty, with
--parity none). Reads the common block (map version, kind, firmware, uptime), then the
device's own block, decodes every register as the published map says and prints a table
(or one JSON object with the raw registers and the decoded fields), plus the device
identification (43/14). Read-only: it writes nothing to the device. pymodbus is the master.
"""

import json

from .runtime import ToolError

MAP_VERSION = 1
COMMON = 100
KINDS = {1: "detector", 2: "valve"}
UNKNOWN = 0xFFFF

DET_STATE = ("CH4 level-1 alarm", "CH4 level-2 alarm", "CO alarm", "fault",
             "relay / shut-off requested", "hushed", "warming up")
VALVE_STATE = ("closed", "closing", "open", "fault", None, "link up", "link lost")
CH_FAULTS = ("short", "open", "out of range", "stuck", "calibration missing", "end of life",
             "no communication")
DEV_FAULTS = ("supply", "interlock missing", "interlock output fault")
VALVE_FAULTS = ("valve stuck open", "pressure sensor", "supply low", "store error")
VALVE_STATES = ("open", "closing", "closed", "fault")
CAUSES = ("none", "interlock", "over_pressure", "under_pressure", "over_flow", "manual",
          "link_lost", "unknown")
LINKS = ("none", "unpaired", "down", "up", "lost")

# (register, key, label, kind of value)
DETECTOR = (
    (0, "state", "state", "bits:det"), (1, "ch4_pct_lel", "CH4", "x10:%LEL"),
    (2, "co_ppm", "CO", "int:ppm"), (3, "ch4_faults", "CH4 sensor faults", "bits:ch"),
    (4, "co_faults", "CO sensor faults", "bits:ch"), (5, "device_faults", "device faults", "bits:dev"),
    (6, "ch4_level", "CH4 alarm level", "int:"), (7, "co_alarm", "CO alarm", "int:"),
    (8, "co_dose_pct", "CO dose", "int:%"), (9, "ch4_l1_alarms", "CH4 level-1 alarms", "int:"),
    (10, "ch4_l2_alarms", "CH4 level-2 alarms", "int:"), (11, "co_alarms", "CO alarms", "int:"),
    (12, "shutoff_requests", "shut-off requests", "int:"),
    (13, "ch4_peak_pct_lel", "CH4 peak", "x10:%LEL"),
    (14, "ch4_life_days", "CH4 sensor life left", "int:days"),
    (15, "co_life_days", "CO sensor life left", "int:days"), (16, "supply_mv", "supply", "int:mV"),
)
VALVE = (
    (0, "state", "state", "bits:valve"), (1, "pressure_pa", "inlet pressure", "int:Pa"),
    (2, "flow_m3h", "flow", "x1000:m3/h"), (3, "valve", "valve", "name:state"),
    (4, "last_close_cause", "last close cause", "name:cause"),
    (5, "faults", "faults", "bits:valve_faults"), (6, "closes", "closes", "int:"),
    (7, "reopens", "manual reopenings", "int:"), (8, "trips", "trip pulses", "int:"),
    (9, "remote_closes", "remote closes", "int:"), (10, "link", "interlock link", "name:link"),
    (11, "supply_mv", "supply", "int:mV"), (12, "close_latency_ms", "last close latency", "int:ms"),
)
BITS = {"det": DET_STATE, "valve": VALVE_STATE, "ch": CH_FAULTS, "dev": DEV_FAULTS,
        "valve_faults": VALVE_FAULTS}
NAMES = {"state": VALVE_STATES, "cause": CAUSES, "link": LINKS}


def add_arguments(p):
    p.add_argument("--port", required=True,
                   help="serial port of a USB-RS485 adapter (or a virtual device's RS-485 pty)")
    p.add_argument("--address", type=int, default=1, help="Modbus slave address (default 1)")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--parity", choices=["even", "odd", "none"], default="even")
    p.add_argument("--stop-bits", type=int, choices=[1, 2],
                   help="default: 1 with parity, 2 without (the device's default)")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each answer")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def decode(kind, regs):
    """{register: value} of one device block -> [(key, label, shown, raw)]."""
    table = DETECTOR if kind == "detector" else VALVE
    out = []
    for reg, key, label, how in table:
        v = regs.get(reg)
        if v is None:
            continue
        typ, _, unit = how.partition(":")
        if typ == "bits":
            names = BITS[unit]
            on = [n for i, n in enumerate(names) if n and v & (1 << i)]
            if v & 0x8000 and unit == "ch":
                on = ["not fitted"]
            elif v & 0x8000:
                on.append("other")
            shown = ", ".join(on) if on else ("ok" if "fault" in unit or unit in ("ch", "dev")
                                              else "-")
            value = on
        elif v == UNKNOWN:
            shown, value = "unknown", None
        elif typ == "x10":
            shown, value = "%.1f %s" % (v / 10.0, unit), v / 10.0
        elif typ == "x1000":
            shown, value = "%.3f %s" % (v / 1000.0, unit), v / 1000.0
        elif typ == "name":
            names = NAMES[unit]
            value = names[v] if v < len(names) else "code %d" % v
            shown = value
        else:
            shown, value = ("%d %s" % (v, unit)).strip(), v
        out.append((key, label, shown, value))
    return out


class Reader:
    def __init__(self, args):
        import logging

        try:
            from pymodbus.client import ModbusSerialClient
        except ImportError:
            raise ToolError("pymodbus is not installed (pip install pymodbus)")
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # errors are ours to word
        stop = args.stop_bits or (2 if args.parity == "none" else 1)
        self.addr = args.address
        self.c = ModbusSerialClient(args.port, baudrate=args.baud, parity=args.parity[0].upper(),
                                    stopbits=stop, bytesize=8, timeout=args.timeout, retries=1)
        if not self.c.connect():
            raise ToolError("cannot open %s" % args.port)

    def regs(self, start, n):
        from pymodbus.exceptions import ModbusException

        try:
            r = self.c.read_input_registers(start, count=n, device_id=self.addr)
        except ModbusException as e:
            raise ToolError("no answer from address %d (%s): check the address, baud rate, "
                            "parity and the A/B wiring" % (self.addr, e))
        if r.isError():
            raise ToolError("address %d answered exception %s to a read of %d..%d"
                            % (self.addr, getattr(r, "exception_code", "?"), start, start + n - 1))
        return dict((start + i, v) for i, v in enumerate(r.registers))

    def ident(self):
        out = {}
        try:
            r = self.c.read_device_information(read_code=3, device_id=self.addr)
        except Exception:
            return out
        if not r.isError():
            for oid, val in r.information.items():
                out[oid] = val.decode("utf-8", "replace") if isinstance(val, bytes) else str(val)
        return out

    def close(self):
        self.c.close()


def read_device(args):
    rd = Reader(args)
    try:
        common = rd.regs(COMMON, 6)
        version, kind_code = common[COMMON], common[COMMON + 1]
        kind = KINDS.get(kind_code)
        if kind is None:
            raise ToolError("address %d is not a gasguard device (kind register %d = %d)"
                            % (args.address, COMMON + 1, kind_code))
        n = len(DETECTOR if kind == "detector" else VALVE)
        block = rd.regs(0, n)
        ident = rd.ident()
    finally:
        rd.close()
    fw = "%d.%d.%d" % (common[COMMON + 2] >> 8, common[COMMON + 2] & 0xFF, common[COMMON + 3])
    return {
        "address": args.address, "kind": kind, "map_version": version, "fw": fw,
        "uptime_s": (common[COMMON + 4] << 16) | common[COMMON + 5],
        "identifier": ident.get(0x80) or None, "vendor": ident.get(0), "model": ident.get(1),
        "product": ident.get(4),
        "fields": dict((k, v) for k, _, _, v in decode(kind, block)),
        "registers": dict((str(a), v) for a, v in sorted(block.items())),
        "_table": decode(kind, block),
    }


def run(args):
    d = read_device(args)
    table = d.pop("_table")
    if args.json:
        print(json.dumps(d, indent=2, sort_keys=True))
        return 0
    rows = [("device", "%s at address %d" % (d["kind"], d["address"])),
            ("identifier", d["identifier"] or "-"),
            ("product", "%s (%s), model %s" % (d["product"] or "-", d["vendor"] or "-",
                                               d["model"] or "-")),
            ("firmware", d["fw"]), ("register map", "version %d" % d["map_version"]),
            ("uptime", "%d s" % d["uptime_s"])]
    rows += [(label, shown) for _, label, shown, _ in table]
    w = max(len(r[0]) for r in rows)
    for label, shown in rows:
        print("%-*s  %s" % (w, label, shown))
    if d["map_version"] > MAP_VERSION:
        print("note: the device's register map is version %d; this tool knows %d (newer "
              "registers are not shown)" % (d["map_version"], MAP_VERSION))
    return 0
