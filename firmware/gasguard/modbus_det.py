"""The detector's Modbus register block (registers 0..SIZE-1; docs/modbus.md).

Values are read straight from the running Detector at request time (no copy, no
allocation). It is also an event sink of the app, only to count alarms since boot.
"""

from gasguard.modbus_regs import (
    CMD_CLOSE, CMD_HUSH, CMD_SELF_TEST, KIND_DETECTOR, UNKNOWN, RegisterMap, u16,
)

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_NOT_FITTED = const(0x8000)  # channel fault word of a channel the tier does not have
_SIZE = const(17)


class DetectorRegisters(RegisterMap):
    KIND = KIND_DETECTOR
    COMMANDS = (CMD_HUSH, CMD_SELF_TEST, CMD_CLOSE)
    SIZE = _SIZE

    def __init__(self, app, handler, vendor, product, ident_id, model):
        RegisterMap.__init__(self, app, handler, vendor, product, ident_id, model)
        self.det = app.detector
        self.ch4_l1_alarms = 0
        self.ch4_l2_alarms = 0
        self.co_alarms = 0

    def event(self, ev):
        if ev.get("event") != "alarm" or ev.get("state") != "on":
            return
        if ev.get("gas") == "co":
            self.co_alarms += 1
        elif ev.get("level") == 2:
            self.ch4_l2_alarms += 1
        else:
            self.ch4_l1_alarms += 1

    def value(self, a):
        det = self.det
        if a == 0:
            return self._state()
        if a == 1:
            ch = det.ch4
            if not self._usable(ch):
                return UNKNOWN
            return u16((ch.ppm_x10 * 10) // det.cfg["ch4_pct_lel_x10"])
        if a == 2:
            ch = det.co
            if ch is None or not self._usable(ch):
                return UNKNOWN
            return u16(ch.ppm_x10 // 10)
        if a == 3:
            return self._fault_word(det.ch4)
        if a == 4:
            return self._fault_word(det.co)
        if a == 5:
            return det.device_faults()
        if a == 6:
            return det.alarm_level("ch4")
        if a == 7:
            return det.alarm_level("co")
        if a == 8:
            ca = det.co_alarm
            return 0 if ca is None else u16(((ca.dose >> 10) * 100) >> 14)  # % of one alarm dose
        if a == 9:
            return u16(self.ch4_l1_alarms)
        if a == 10:
            return u16(self.ch4_l2_alarms)
        if a == 11:
            return u16(self.co_alarms)
        if a == 12:
            return u16(det.interlock_count)
        if a == 13:
            return u16((det.gases[0].peak * 10) // det.cfg["ch4_pct_lel_x10"])
        if a == 14:
            return self._life(det.ch4)
        if a == 15:
            return self._life(det.co)
        sup = det.supply
        return UNKNOWN if sup is None else u16(sup.millivolts)

    def _state(self):
        det = self.det
        lvl = det.alarm_level("ch4")
        co = det.alarm_level("co")
        cfg = det.cfg
        v = 0
        if lvl >= 1:
            v |= 1
        if lvl >= 2:
            v |= 2
        if co:
            v |= 4
        if det.any_fault():
            v |= 8
        shut = det.interlock_cause is not None and (
            lvl >= cfg["interlock_ch4_level"] or (co and cfg["interlock_on_co"]))
        if det.outputs.relay_on or shut:
            v |= 16
        if det.hushed:
            v |= 32
        if not det.ready:
            v |= 64
        return v

    def _usable(self, ch):
        f = ch.fault  # the channel's worst fault; these two leave the reading usable
        return f is None or f == "cal_missing" or f == "end_of_life"

    def _fault_word(self, ch):
        if ch is None:
            return _NOT_FITTED
        bits = getattr(ch, "fault_bits", None)
        if bits is None:
            return 0 if ch.fault is None else 0x4000  # a channel that names only its top fault
        return bits & 0x7F  # gasguard.sensing: bit 6 = sensor_comm (a digital module went silent)

    def _life(self, ch):
        if ch is None:
            return UNKNOWN
        life = getattr(ch, "service_life_days", None)
        if life is None:
            return UNKNOWN
        return u16(life - ch.age_days)
