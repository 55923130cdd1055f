"""Heap and cost of the Modbus RTU slave on MicroPython: run by host_tests/heap/test_modbus_heap.py
and gasguard_tools.bench_modbus, on the ESP32-like interpreter from .mpy.

    micropython boards/sim/bench_modbus.py detector|valve

Builds the slave with the device's register map on a simulated device (a real Detector
on scripted channels, or a real ValveController on the simulated valve) behind an
allocation-free UART double, then prints one JSON line:
  modules     heap held by importing the slave's modules (gasguard.modbus*, bytecode + globals)
  objects     heap of the built slave and its register map (buffers, tables, counters)
  idle_alloc  bytes allocated by 1000 polls of an idle line
  read_alloc  bytes allocated by 100 requests 04 reading the whole device block, with replies
  hold_alloc  the same for 100 requests 03 of registers 0-2
  request_us  microseconds for one 04 request of the whole block (parse, read, CRC, reply)
  idle_us     microseconds for one idle poll
"""

import gc
import json
import sys
import time

gc.collect()
kind = sys.argv[1] if len(sys.argv) > 1 else "detector"
from simboard import SimClock  # noqa: E402
from sim_rs485 import DePin, SimUart, SimUsClock  # noqa: E402

if kind == "detector":
    from detector_fakes import make  # noqa: E402
else:
    from gasguard.valve import ValveController  # noqa: E402
    from simvalve import SimValveBoard  # noqa: E402
gc.collect()
base = gc.mem_alloc()
from gasguard.modbus_rtu import RtuSlave, crc16, modbus_config  # noqa: E402
from gasguard import modbus_regs  # noqa: E402,F401

if kind == "detector":
    from gasguard.modbus_det import DetectorRegisters as Regs  # noqa: E402
else:
    from gasguard.modbus_valve import ValveRegisters as Regs  # noqa: E402
gc.collect()
modules = gc.mem_alloc() - base


class App:
    def __init__(self):
        self.t = 0
        self.pollers = []
        self.sinks = []
        if kind == "detector":
            self.b, self.detector, self.chans, evs, s, sup = make()
            self.KIND = "detector"
        else:
            self.clock = SimClock()
            self.board = SimValveBoard(self.clock)

            class NoStore:
                def read(self, name):
                    return None

                def write(self, name, b):
                    pass

            self.controller = ValveController(self.board, None, NoStore(), None)
            self.KIND = "valve"

    def uptime_s(self):
        return 12345

    def last_close(self):
        return None


class Handler:
    def hush(self):
        return {"hushed": True}

    def self_test(self):
        return {"started": True}

    def close_valve(self):
        return {"closing": True}


app = App()
uart = SimUart(512)
clock = SimUsClock()
cfg = modbus_config({"address": 1, "baud": 9600})
gc.collect()
b0 = gc.mem_alloc()
regs = Regs(app, Handler(), "gasguard", "gasguard device", "88.111.8/GGD-0001", "GGD-M1")
slave = RtuSlave(uart, DePin(), clock, cfg, regs)
gc.collect()
objects = gc.mem_alloc() - b0


def request(fc, start, n):
    b = bytearray([1, fc, start >> 8, start & 0xFF, n >> 8, n & 0xFF])
    c = crc16(b, 6)
    b.append(c & 0xFF)
    b.append(c >> 8)
    return bytes(b)


whole = request(4, 0, Regs.SIZE)
first3 = request(3, 0, 3)
reply = bytearray(300)


def one(frame):
    uart.feed(frame)
    slave.poll()  # reads the frame
    clock.advance_us(5000)  # the 3.5-character silence passes
    slave.poll()  # answers
    uart._n_out = 0  # the master took the reply (test side, no allocation)


for _ in range(5):  # warm up: every code path once
    one(whole)
    one(first3)
gc.collect()
gc.disable()
a = gc.mem_alloc()
for _ in range(1000):
    clock.advance_us(1000)
    slave.poll()
idle_alloc = gc.mem_alloc() - a
a = gc.mem_alloc()
for _ in range(100):
    one(whole)
read_alloc = gc.mem_alloc() - a
a = gc.mem_alloc()
for _ in range(100):
    one(first3)
hold_alloc = gc.mem_alloc() - a
gc.enable()
replies = slave.replies

def batch(n):
    t0 = time.ticks_us()
    for _ in range(n):
        uart.feed(whole)
        slave.poll()
        clock.advance_us(5000)
        slave.poll()
        uart._n_out = 0
    t1 = time.ticks_us()
    for _ in range(n):
        slave.poll()
    return time.ticks_diff(t1, t0) / n, time.ticks_diff(time.ticks_us(), t1) / n


# the best of 10 batches: the host is shared, the fastest batch is the code's own cost
runs = [batch(50) for _ in range(10)]
request_us = min(r[0] for r in runs)  # its receive poll + its answering poll
idle_us = min(r[1] for r in runs)
print(json.dumps({"kind": kind, "modules": modules, "objects": objects, "idle_alloc": idle_alloc,
                  "read_alloc": read_alloc, "hold_alloc": hold_alloc, "replies": replies,
                  "size": Regs.SIZE, "request_us": int(request_us + 0.5),
                  "idle_us": int(idle_us * 10 + 0.5) / 10}))
