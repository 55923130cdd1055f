"""The detector's self-test (docs/alarms.md), loaded only while a test runs (~4 s) and
released after it (gasguard.lazy.release in SelfTest.end; docs/heap-budget.md): the
alarm path never needs it, and the ~4 s sequence is the only time it is in the heap.

SelfTest(det) samples every channel afresh, collects the faults, checks the alarm logic
(a scratch methane level on a synthetic leak; the CO dose table against the profile's
windows), lights every output and emits the start; poll(det, now) runs the LED/buzzer
sequence and ends the test ("pass", "fail", "aborted" when an alarm sounds): the end
event, the outputs back to the detector, and this module released. It never actuates
the interlock.
"""

from gasguard.methane_alarm import MethaneLevel
from gasguard.outputs import BEEP_L1, OFF, ON


def _show(o, red, yellow, green, buzzer):
    o.red.set(red)
    o.yellow.set(yellow)
    o.green.set(green)
    if buzzer is not None:
        o.buzzer.set(buzzer)


class SelfTest:
    def __init__(self, det):
        faults = []
        for g in det.gases:
            ch = g.ch
            ch.sample()
            if ch.fault is not None:
                faults.append("%s:%s" % (g.name, ch.fault))
        det._flt.codes(faults, False)  # supply, interlock outputs
        # the alarm logic: a scratch level on 1.6 x the set point (GB response-test gas)
        m = det.gases[0].alarm.low
        scratch = MethaneLevel(1, m.on_x10, m.off_x10, m.delay_ms, m.clear_ms)
        probe = m.on_x10 + (m.on_x10 * 6) // 10
        t = 0
        while not scratch.active and t <= m.delay_ms + 1000:
            scratch.update(probe, 1000)
            t += 1000
        if not scratch.active or t < m.delay_ms:
            faults.append("logic_ch4")
        if det.co_alarm is not None:
            from gasguard.co_rates import alarm_time_s

            for ppm, lo, hi in det.cfg["co_windows"]:
                ts = alarm_time_s(det.co_alarm.rates, ppm, det.co_alarm.shift)
                if hi is None:
                    if ts is not None and ts < lo:
                        faults.append("logic_co")
                elif ts is None or ts < lo or ts > hi:
                    faults.append("logic_co")
        self.faults = faults
        self.start = det.clock.ticks_ms()
        det._st = self
        _show(det.outputs, ON, ON, ON, BEEP_L1)
        det._relay_update()  # self_test_relay: the relay is part of the test
        det.emit({"event": "self_test", "state": "start"})

    def poll(self, det, now):
        if det._sounding():
            return self.end(det, "aborted")
        el = det.clock.ticks_diff(now, self.start)
        o = det.outputs
        if el >= 4000:
            self.end(det, "fail" if self.faults else "pass")
        elif el >= 3000:
            _show(o, OFF, OFF, ON, OFF)
        elif el >= 2000:
            _show(o, OFF, ON, OFF, OFF)
        elif el >= 1000:
            _show(o, ON, OFF, OFF, None)

    def end(self, det, result):
        ev = {"event": "self_test", "state": "end", "result": result}
        if self.faults:
            ev["faults"] = self.faults
        det._st = None
        det.emit(ev)
        det._relay_update()
        det._render()
        from gasguard.lazy import release

        release("selftest", "co_rates")
