# What ValveApp's loop turn and its console cost, on the simulated valve board without
# radio: run by gasguard_tools.bench_valve_app (`make bench`) on MicroPython and CPython.
#
#     micropython boards/sim/bench_valve_app.py FLASH_DIR
#
# Prints `key value` lines (gasguard_tools.benchkit).

import gc, sys
from gasguard.store import FileStore
from gasguard.valve_app import ValveApp
from simboard import SimClock, SimConsole, SimPin
from simvalve import SimValveBoard

from benchtime import diff, per_call, us


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
