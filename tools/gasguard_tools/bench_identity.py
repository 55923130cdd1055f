"""Identity benchmark: validation, message sealing and ActiveId.poll() cost on MicroPython.

What matters on the device: ActiveId.poll() runs in the same loop as the alarm path, so
the cost of one registration/heartbeat step (canonical encoding + HMAC-SHA256) bounds how
long it can hold the loop. Measured on the MicroPython unix port (x86; an ESP32 at 240 MHz
is roughly 20-50x slower) and on CPython, plus the heap one step allocates.
"""


from . import BOARDS
from .benchkit import compare_table

SCRIPT = BOARDS / "sim" / "bench_identity.py"

ROWS = [
    ("validate_us", "validate() one identifier", "µs"),
    ("poll_reg_us", "poll() building + sealing a registration (incl. one seq reservation write)", "µs"),
    ("ack_verify_us", "on_message() verifying an acknowledgement (incl. flash write of the flag)", "µs"),
    ("poll_hb_us", "poll() sending a heartbeat (mean)", "µs"),
    ("poll_idle_us", "poll() with nothing due (mean)", "µs"),
    ("reg_bytes", "registration message size", "bytes"),
    ("hb_bytes", "heartbeat message size", "bytes"),
    ("hb_heap_bytes", "heap allocated by one heartbeat step (MicroPython)", "bytes"),
]


def main():
    compare_table("Identity (active identifier step cost)", ROWS, SCRIPT, ["{tmp}/flash"], timeout=120)


if __name__ == "__main__":
    main()
