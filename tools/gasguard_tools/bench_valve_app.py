"""Valve device benchmark: what ValveApp's loop turn and its console cost.

The valve controller's loop (controller step, button machine, history, console) runs
every 10 ms on the ESP32; a STATUS? is the biggest reply a technician asks for. Measured
on the MicroPython unix port (x86; an ESP32 at 240 MHz is roughly 20-50x slower) and on
CPython, on the simulated valve board (boards/sim/simvalve.py) without radio.
"""

from .benchkit import compare_table

SCRIPT = r'''
import gc, sys, time
from gasguard.store import FileStore
from gasguard.valve_app import ValveApp
from simboard import SimClock, SimConsole, SimPin
from simvalve import SimValveBoard

try:
    us = time.ticks_us
    diff = time.ticks_diff
except AttributeError:
    us = lambda: int(time.perf_counter() * 1000000)
    diff = lambda a, b: a - b


class Null(SimConsole):
    def write(self, b):
        self.last = len(b)
        return len(b)


class NoId:
    locked = False

    def load(self):
        return None


clock = SimClock()
board = SimValveBoard(clock, None, None)
board.console = Null()
board.button = SimPin("button", SimPin.IN)
app = ValveApp(board, FileStore(sys.argv[1]), {"valve": {"flow_mode": "analog"}}, identity=NoId())
for _ in range(500):
    clock.advance(10)
    board.step()
    app.poll()


def turn():
    clock.advance(10)
    board.step()
    app.poll()


def per_call(fn, n):
    t0 = us()
    for _ in range(n):
        fn()
    return diff(us(), t0) // n

print("turn_us", per_call(turn, 3000))
def status():
    board.console.feed(b"#t1 STATUS?\n")
    app.poll()
print("status_us", per_call(status, 200))
print("status_bytes", board.console.last)
def log():
    board.console.feed(b"#t1 LOG? 20\n")
    app.poll()
print("log_us", per_call(log, 200))
def close_event():
    app.emit({"event": "valve", "state": "closed", "cause": "under_pressure"})
print("emit_us", per_call(close_event, 200))
gc.collect()
if hasattr(gc, "mem_alloc"):
    gc.disable()
    b = gc.mem_alloc()
    for _ in range(1000):
        turn()
    print("turn_heap_bytes", (gc.mem_alloc() - b) // 1000)
    gc.enable()
'''

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
