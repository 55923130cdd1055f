"""The valve controller's Modbus register block (registers 0..SIZE-1; docs/modbus.md).

Read straight from the running ValveController at request time, without allocation.
There is no open command: the bus can only ask for a close (CMD_CLOSE) or a self-test.
"""

from gasguard.modbus_regs import CMD_CLOSE, CMD_SELF_TEST, KIND_VALVE, UNKNOWN, RegisterMap, u16

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_SIZE = const(13)
STATES = ("open", "closing", "closed", "fault")  # register 3: the index
FAULTS = ("valve_stuck_open", "pressure_sensor", "supply_low", "store_error")  # register 5 bits
LINKS = ("none", "unpaired", "down", "up", "lost")  # register 10: the index


def _index(names, s):
    i = 0
    for n in names:
        if n == s:
            return i
        i += 1
    return -1


class ValveRegisters(RegisterMap):
    KIND = KIND_VALVE
    COMMANDS = (CMD_SELF_TEST, CMD_CLOSE)
    SIZE = _SIZE

    def __init__(self, app, handler, vendor, product, ident_id, model):
        RegisterMap.__init__(self, app, handler, vendor, product, ident_id, model)
        self.ctl = app.controller

    def value(self, a):
        c = self.ctl
        if a == 0:
            st = c.state
            v = 0
            if st == "closed":
                v |= 1
            elif st == "closing":
                v |= 2
            elif st == "open":
                v |= 4
            if c.faults:
                v |= 8
            ls = self._link()
            if ls == "up":
                v |= 32
            elif ls == "lost":
                v |= 64
            return v
        if a == 1:
            return u16(c.pressure_pa)
        if a == 2:
            return u16(c.flow_m3h_x1000)
        if a == 3:
            if "valve_stuck_open" in c.faults:
                return 3
            i = _index(STATES, c.state)
            return UNKNOWN if i < 0 else i
        if a == 4:
            cause = c.cause
            if cause is None:
                ev = self.app.last_close()
                cause = None if ev is None else ev.get("cause")
            return _index(c.causes, cause) + 1  # 0 = never closed (as far as the log knows)
        if a == 5:
            v = 0
            for f in c.faults:
                i = _index(FAULTS, f)
                v |= 0x8000 if i < 0 else 1 << i
            return v
        if a == 6:
            return u16(c.counters["closes"])
        if a == 7:
            return u16(c.counters["reopens"])
        if a == 8:
            return u16(c.counters["trips"])
        if a == 9:
            return u16(c.counters["remote_closes"])
        if a == 10:
            i = _index(LINKS, self._link())
            return UNKNOWN if i < 0 else i
        if a == 11:
            return u16(c.supply_mv)
        return u16(c.last_close_latency_ms)

    def _link(self):
        lk = self.ctl.link
        return "none" if lk is None else lk.link
