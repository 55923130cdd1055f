"""gasguard: firmware for gas leak detectors and safety self-closing valve controllers.

Logic modules in this package talk to hardware only through the small duck-typed
objects described in docs/architecture.md; they never import machine, network,
espnow or esp32, so the same code runs on the ESP32, on the MicroPython unix port
and on CPython.
"""

VERSION = "0.1.0"
