"""The valve controller: build the device (gasguard.devices, as the simulator and the
tests build it; only the board objects differ) and run its loop forever. It never opens
the valve. Maintenance mode (service command MAINT) skips the app once (REPL free)."""

import gc

# first of all: a collection after every 8 KB allocated, not only when the heap is full, so
# the garbage of each step of the boot (and of the loop) is reused before fresh heap is
# taken: the long-lived objects stay packed low and the free heap in large blocks (without:
# the day at 112 KB fails, tens of KB free in blocks of 2 KB at most; docs/heap-budget.md)
gc.threshold(8192)

from gasguard import lazy  # noqa: E402

lazy.prime()  # first: the boot's names interned while the heap is empty (docs/heap-budget.md)

import esp32_hal  # noqa: E402
from pins import PINS  # noqa: E402

from gasguard.devices import board_main  # noqa: E402

app = board_main("valve", "esp32-valve", esp32_hal, PINS)
del board_main
lazy.after_boot()  # boot-only code out of the heap before the loop (docs/heap-budget.md)
if app is not None:
    app.run_forever(10, watchdog=app.board.watchdog(8000))
