"""Service console benchmark: what the console costs the application loop.

Service.poll() runs in the same loop as the alarm path, so its worst case per call bounds
how long a busy console can delay a sample step. Measured on the MicroPython unix port
(x86; an ESP32 at 240 MHz is roughly 20-50x slower) and on CPython: an idle poll, a poll
that completes a STATUS?-class request against a small facade, a garbage line, and the
heap an idle poll allocates (must be 0: the line buffer is preallocated).
"""


from . import BOARDS
from .benchkit import compare_table

SCRIPT = BOARDS / "sim" / "bench_service.py"

ROWS = [
    ("idle_us", "poll() with no input (mean)", "µs"),
    ("read_us", "poll() completing a tagged READ? and writing the JSON reply", "µs"),
    ("garbage_us", "poll() rejecting a garbage line (E_GARBAGE reply)", "µs"),
    ("chunk64_us", "poll() taking a 64-byte chunk of an overlong line", "µs"),
    ("idle_heap_bytes", "heap allocated by 100 idle polls (MicroPython)", "bytes"),
]


def main():
    compare_table("Service console (cost per poll in the application loop)", ROWS, SCRIPT, (), timeout=120)


if __name__ == "__main__":
    main()
