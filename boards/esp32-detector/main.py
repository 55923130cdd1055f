"""The detector controller: build the device (gasguard.devices, as the simulator and the
tests build it; only the board objects differ) and run the alarm loop forever.
Maintenance mode (service command MAINT) skips the app once so the REPL is free."""

import gc

# first of all, as on the valve: a collection after every 8 KB allocated, not only when the
# heap is full, so each boot step's garbage is reused before fresh heap is taken (without:
# the low tier's day at 112 KB failed after the broker outage, 9-17 KB free in holes of
# 1 KB; with: it ends clean, 12.7 KB least free, docs/heap-budget.md)
gc.threshold(8192)

from gasguard import lazy  # noqa: E402

lazy.prime()  # first: the boot's names interned while the heap is empty (docs/heap-budget.md)

import esp32_hal  # noqa: E402
from pins import PINS  # noqa: E402

from gasguard.devices import board_main  # noqa: E402

app = board_main("detector", "esp32-detector", esp32_hal, PINS)
del board_main
lazy.after_boot()  # boot-only code out of the heap before the loop (docs/heap-budget.md)
if app is not None:
    app.run_forever(10, watchdog=app.board.watchdog(8000))
