"""Differential driver for the Modbus RTU slave: same bytes in on every interpreter -> same
bytes out.

Input (stdin): one line per step, "hex gap_us": bytes arriving on the line, then that many
microseconds of polling (500 us steps). Output: "R <hex>" for every reply the slave sent
during a step ("R -" for none), "W <values>" for the writes carried out, then the slave's
counters. The slave runs on the frame-test map (host_tests/portable/modbus_rig.TableRegs).
"""

import sys

from modbus_rig import Line


def main():
    r = Line()
    for line in sys.stdin.read().splitlines():
        if not line.strip():
            continue
        data, gap = line.split()
        r.send(bytes.fromhex(data) if data != "-" else b"")
        r.idle(int(gap))
        out = r.uart.take()
        print("R " + (out.hex() if out else "-"))
    s = r.slave
    print("W " + ",".join(str(v) for v in r.regs.done))
    print("C %d %d %d %d %d %d %d %d" % (s.frames, s.replies, s.exceptions, s.crc_errors,
                                         s.short_frames, s.overruns, s.other_address,
                                         s.broadcasts))


main()
