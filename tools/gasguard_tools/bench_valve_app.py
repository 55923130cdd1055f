"""Valve device benchmark: what ValveApp's loop turn and its console cost.

The valve controller's loop (controller step, button machine, history, console) runs
every 10 ms on the ESP32; a STATUS? is the biggest reply a technician asks for. Measured
on the MicroPython unix port (x86; an ESP32 at 240 MHz is roughly 20-50x slower) and on
CPython, on the simulated valve board (boards/sim/simvalve.py) without radio.
"""

from . import BOARDS
from .benchkit import compare_table

SCRIPT = BOARDS / "sim" / "bench_valve_app.py"

ROWS = [
    ("turn_us", "one loop turn: controller + button + history + idle console (mean)", "µs"),
    ("status_us", "a turn answering STATUS? (reply written)", "µs"),
    ("status_bytes", "size of the STATUS? reply", "bytes"),
    ("log_us", "a turn answering LOG? 20", "µs"),
    ("emit_us", "emit(): stamp + RAM ring + append one framed record to flash", "µs"),
    ("turn_heap_bytes", "heap allocated per idle loop turn (MicroPython)", "bytes"),
]


def main():
    compare_table("Valve device (ValveApp loop turn and console)", ROWS, SCRIPT, ("{tmp}",), timeout=180)


if __name__ == "__main__":
    main()
