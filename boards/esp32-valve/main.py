"""The valve controller: assemble the device and run its loop forever (minimal).

The full assembly (reporting, service console, identity) lives in gasguard.devices.ValveApp
and is wired by the lead; this file runs the controller with its ESP-NOW link on its own.
Button: short press = close the valve locally (cause "manual"), hold 3 s = pairing window.
"""

import json
import time

import micropython

from esp32_hal import Board
from pins import PINS

from gasguard.store import FileStore
from gasguard.valve import ValveController

micropython.kbd_intr(-1)
store = FileStore("/data")
try:
    cfg = json.loads(store.read("valve.json") or b"{}")
except ValueError:
    cfg = {}
board = Board(PINS)
link = cfg.get("link") or {}
board.radio = None
if cfg.get("tier", "M") != "L" or link:
    from esp32_radio import Radio

    board.radio = Radio(link.get("channel", 1))


def emit(ev):
    print(json.dumps(ev))


valve = ValveController(board, cfg, store, emit)
wdt = board.watchdog(8000)
pressed_at = None
while True:
    valve.poll()
    now = time.ticks_ms()
    if board.button.value():
        if pressed_at is None:
            pressed_at = now
        elif pressed_at is not False and time.ticks_diff(now, pressed_at) >= 3000:
            valve.pair_button()
            pressed_at = False  # until released
    elif pressed_at is not None:
        if pressed_at is not False:
            valve.close("manual", "button")
        pressed_at = None
    wdt.feed()
    time.sleep_ms(10)
