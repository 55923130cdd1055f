"""The one fault table of every sensing channel (ADC Channel, UART module, test doubles).

A channel reports its active faults as bits of `fault_bits` and its top fault as the code
`fault`: FAULT_BITS[i] is the bit of FAULT_CODES[i], both listed from the highest priority
down (the bit values are fixed: Modbus registers 3-4 carry them, docs/modbus.md). The
detector turns bits into events and `diag` fault names ("co:sensor_comm") with this table,
so a code means the same thing whatever the channel kind (test_channel_conformance.py).
"""

# Plain ints, not const(): every one is imported by name elsewhere, so each stays a global.
F_SHORT = 1
F_OPEN = 2
F_RANGE = 4
F_STUCK = 8
F_CAL = 16
F_EOL = 32
F_COMM = 64
INVALIDATING = 79  # short | open | range | stuck | comm: no usable reading
N_FAULTS = 7

FAULT_CODES = ("sensor_short", "sensor_open", "out_of_range", "sensor_stuck", "sensor_comm",
               "cal_missing", "end_of_life")
FAULT_BITS = (F_SHORT, F_OPEN, F_RANGE, F_STUCK, F_COMM, F_CAL, F_EOL)
