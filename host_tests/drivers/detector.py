"""Differential driver: a replay-runner session on stdin (header, rows, end), events out.

The same generated scenario runs through the real Detector, channels, calibration and
seeded noise on CPython and MicroPython; the outputs must be byte-identical.
"""

import sys

from replay_detector import main

sys.exit(main())
