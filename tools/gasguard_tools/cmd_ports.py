"""`gasguard ports`: the serial ports of this computer, and which of them look like a board.

A port "looks like a board" when its USB bridge is one the ESP32 boards we support use
(BRIDGES: Espressif's own USB-serial/JTAG and native USB, Silicon Labs CP210x, WCH
CH340/CH9102/CH343, FTDI). `--port auto` on every command that talks to a device takes the
board when exactly one is attached and refuses (listing them) otherwise: a factory PC
with two boards on it must never flash the wrong one.
"""

import json

from .runtime import ToolError

# USB vendor id -> (name, product ids, or None for every product of that vendor)
BRIDGES = {
    0x303A: ("Espressif USB (native / USB-serial-JTAG)", None),
    0x10C4: ("Silicon Labs CP210x", {0xEA60, 0xEA70}),
    0x1A86: ("WCH CH340 / CH9102 / CH343", {0x7523, 0x55D3, 0x55D4, 0x5523}),
    0x0403: ("FTDI", {0x6001, 0x6010, 0x6014, 0x6015}),
}


def add_arguments(p):
    p.add_argument("--all", action="store_true", help="also ports that do not look like a board")
    p.add_argument("--json", action="store_true", help="machine-readable JSON list")


def bridge(info):
    """The bridge's name if this port looks like one of our boards, else None."""
    vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
    if vid is None or vid not in BRIDGES:
        return None
    name, pids = BRIDGES[vid]
    return name if pids is None or pid in pids else None


def describe(info):
    vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
    return {
        "port": info.device,
        "board": bridge(info) is not None,
        "bridge": bridge(info),
        "usb": None if vid is None else "%04x:%04x" % (vid, pid or 0),
        "serial_number": getattr(info, "serial_number", None),
        "description": None if info.description in (None, "n/a") else info.description,
        "location": getattr(info, "location", None),
    }


def list_ports(comports=None):
    if comports is None:
        try:
            from serial.tools.list_ports import comports
        except ImportError:
            raise ToolError("listing ports needs pyserial (pip install pyserial)")
    return sorted((describe(i) for i in comports()), key=lambda d: d["port"])


def auto_port(comports=None):
    """The one board attached; ToolError if there is none or more than one."""
    boards = [p for p in list_ports(comports) if p["board"]]
    if len(boards) == 1:
        return boards[0]["port"]
    if not boards:
        raise ToolError("--port auto: no board attached (no USB serial port of a known ESP32 "
                        "bridge; `gasguard ports --all` lists every port)")
    raise ToolError("--port auto: %d boards attached (%s); name one with --port"
                    % (len(boards), ", ".join(b["port"] for b in boards)))


def run(args):
    ports = list_ports()
    shown = ports if args.all else [p for p in ports if p["board"]]
    if args.json:
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    if not shown:
        print("no board attached%s" % ("" if args.all else
                                       " (%d other serial ports; --all lists them)" % len(ports)))
        return 0
    for p in shown:
        print("%-16s %-10s %-40s %s" % (p["port"], p["usb"] or "-", p["bridge"] or p["description"] or "-",
                                        ("serial " + p["serial_number"]) if p["serial_number"] else ""))
    if len([p for p in shown if p["board"]]) == 1:
        print("(one board: `--port auto` selects it)")
    return 0
