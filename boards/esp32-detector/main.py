"""The detector controller: build the device (gasguard.devices, as the simulator and the
tests build it; only the board objects differ) and run the alarm loop forever.
Maintenance mode (service command MAINT) skips the app once so the REPL is free."""

from gasguard import lazy

lazy.prime()  # first: the boot's names interned while the heap is empty (docs/heap-budget.md)

import esp32_hal  # noqa: E402
from pins import PINS  # noqa: E402

from gasguard.devices import board_main  # noqa: E402

app = board_main("detector", "esp32-detector", esp32_hal, PINS)
del board_main
lazy.after_boot()  # boot-only code out of the heap before the loop (docs/heap-budget.md)
if app is not None:
    app.run_forever(10, watchdog=app.board.watchdog(8000))
