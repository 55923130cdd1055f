"""The Modbus RTU slave (docs/modbus.md): cost of one request and heap on the ESP32-like
interpreter, .mpy sizes, and the response time at 9600 baud (wire model + a measured
turnaround of a virtual detector behind its RS-485 pty, read by pymodbus).

Run alone: .venv/bin/python -m gasguard_tools.bench_modbus
"""

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from . import BOARDS, FIRMWARE, ROOT
from .runtime import compile_tree, esp32_micropython

MODULES = ("modbus", "modbus_rtu", "modbus_regs", "modbus_det", "modbus_valve")
PROBE = BOARDS / "sim" / "bench_modbus.py"


def probe(kind):
    exe = esp32_micropython()
    if exe is None:
        return None
    path = compile_tree((("firmware", FIRMWARE), ("sim", BOARDS / "sim"),
                         ("portable", ROOT / "host_tests" / "portable")))
    import os

    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(p) for p in path] + [".frozen"]))
    r = subprocess.run([exe, "-X", "heapsize=112k", str(PROBE), kind], capture_output=True,
                       text=True, timeout=300, env=env)
    if r.returncode:
        return {"error": (r.stdout + r.stderr).strip().splitlines()[-1:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def mpy_sizes():
    from .runtime import cross_argv

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in MODULES:
            dst = Path(tmp) / (m + ".mpy")
            subprocess.run(cross_argv(FIRMWARE / "gasguard" / (m + ".py"), "gasguard/%s.py" % m, dst,
                                      ["-march=xtensawin", "-O3"]), check=True)
            out[m] = dst.stat().st_size
    return out


def turnaround(n=200):
    """Round trips of a 3-register read through pymodbus, a virtual detector behind its pty."""
    from pymodbus.client import ModbusSerialClient

    from .cmd_sim import VirtualSerialDevice
    from .rs485_bus import Rs485Bus

    with tempfile.TemporaryDirectory() as tmp:
        bus = Rs485Bus()
        end = bus.add_device()
        port = bus.start()
        dev = VirtualSerialDevice(Path(tmp) / "board", speed=1.0, rs485=end, rs485_address=1)
        dev.start()
        c = ModbusSerialClient(port, baudrate=9600, parity="N", stopbits=1, timeout=1, retries=1)
        try:
            c.connect()
            for _ in range(50):  # booting
                try:
                    if not c.read_input_registers(0, count=3, device_id=1).isError():
                        break
                except Exception:
                    time.sleep(0.1)
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.read_input_registers(0, count=3, device_id=1)
                ts.append((time.perf_counter() - t0) * 1000)
                assert not r.isError()
        finally:
            c.close()
            dev.stop()
            bus.stop()
    ts.sort()
    return {"median_ms": statistics.median(ts), "p95_ms": ts[int(len(ts) * 0.95) - 1],
            "max_ms": ts[-1], "n": n}


def main():
    print("The slave as the devices load it (.mpy), on the ESP32-like 32-bit interpreter at a"
          " 112 KB heap (boards/sim/bench_modbus.py): heap held by its modules and by the built"
          " slave + register map; bytes allocated per idle poll and per register read (1000"
          " idle polls, 100 requests each); the time of one request 04 reading the whole device"
          " block (receive poll + answering poll: parse, read every register, CRC, reply) on"
          " this host (the ESP32 at 240 MHz is roughly 20-50x slower).\n")
    print("| device | modules heap | slave objects | alloc / 1000 idle polls | alloc / 100 reads (04, whole block) | alloc / 100 reads (03, 3 regs) | one request | one idle poll |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("detector", "valve"):
        m = probe(kind)
        if m is None:
            print("| %s | no ESP32-like interpreter | | | | | | |" % kind)
        elif "error" in m:
            print("| %s | failed: %s | | | | | | |" % (kind, " ".join(m["error"])))
        else:
            print("| %s | %d B | %d B | %d B | %d B | %d B | %d us (%d registers) | %.1f us |" % (
                kind, m["modules"], m["objects"], m["idle_alloc"], m["read_alloc"],
                m["hold_alloc"], m["request_us"], m["size"], m["idle_us"]))
    sizes = mpy_sizes()
    print("\n.mpy sizes (xtensawin, -O3): %s; a detector loads %d B, a valve %d B (modbus,"
          " modbus_rtu, modbus_regs + its own map)." % (
              ", ".join("%s %d B" % (k, v) for k, v in sizes.items()),
              sizes["modbus"] + sizes["modbus_rtu"] + sizes["modbus_regs"] + sizes["modbus_det"],
              sizes["modbus"] + sizes["modbus_rtu"] + sizes["modbus_regs"] + sizes["modbus_valve"]))
    # the wire at 9600 baud, 8E1 (11-bit characters): 1.146 ms per character
    ch = 11 / 9600 * 1000
    req, rep = 8 * ch, (5 + 2 * 3) * ch
    print("\nResponse time at 9600 baud, 8E1, reading registers 0-2: the request takes %.1f ms on"
          " the wire, the slave needs the 3.5-character silence (%.1f ms) to know it ended, then"
          " answers at its next main-loop turn (every 10 ms on the device: up to 10 ms + the"
          " request cost above), and the %d-byte reply takes %.1f ms. Worst case from the end"
          " of the request to the end of the reply: %.0f ms + the request cost; a master's"
          " timeout of 100 ms leaves a wide margin (mbpoll's default is 1 s)." % (
              req, 3.5 * ch, 11, rep, 3.5 * ch + 10 + rep))
    try:
        t = turnaround()
        print("\nMeasured round trip (pymodbus request to parsed reply) with a virtual detector"
              " behind its RS-485 pty (the real firmware on the MicroPython unix port, a 5 ms"
              " loop sleep, the host's pty bridge; a pty has no baud rate, so there is no wire"
              " time in it): median %.1f ms, 95th percentile %.1f ms, max %.1f ms over %d"
              " requests." % (t["median_ms"], t["p95_ms"], t["max_ms"], t["n"]))
    except Exception as e:  # the table above is the main figure
        print("\nturnaround measurement failed: %s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
