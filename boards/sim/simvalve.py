"""A simulated safety self-closing valve and the board around its controller.

SimValveBoard has the attributes ValveController expects (clock, switch, trip,
pressure, flow, supply, radio) and models the mechanics:
  * the valve closes by itself (after travel_ms) when the line pressure leaves the
    mechanical band or the flow exceeds the mechanical excess-flow point, or when the
    trip coil is energised; it latches closed;
  * only manual_reset() (a hand on the knob) opens it again, and only while the
    pressure is back inside the band; manual_close() is a hand closing it.
The harness sets pressure_pa / flow_m3h_x1000 and calls step() after advancing the
clock (the controller's poll() reads the pins and ADCs this produces).
MicroPython-compatible, no floats on the step path.
"""

from simboard import SimAnalogIn, SimPin


class _Cached:
    """f(x), computed again only when x changes."""

    def __init__(self, f):
        self.f = f
        self.x = None
        self.y = None

    def __call__(self, x):
        if x != self.x:
            self.x = x
            self.y = self.f(x)
        return self.y


class SimValveBoard:
    def __init__(self, clock, radio=None, cfg=None, travel_ms=800, pressure_pa=2000, flow_m3h_x1000=500,
                 mech_over_pa=8000, mech_under_pa=800, mech_flow_m3h_x1000=4500, supply_mv=3600,
                 with_pressure=True, with_flow=True, switch_closed_level=1, levels=None):
        """levels: (pa -> uV, flow -> uV, supply uV) computed beforehand (`gasguard sim`
        at a device heap: the board then holds no firmware config code); default: the
        transducer models of the valve config cfg."""
        self.clock = clock
        self.radio = radio
        self.travel_ms = travel_ms
        self.pressure_pa = pressure_pa
        self.flow_m3h_x1000 = flow_m3h_x1000
        self.mech_over_pa = mech_over_pa
        self.mech_under_pa = mech_under_pa
        self.mech_flow = mech_flow_m3h_x1000
        self.closed_level = switch_closed_level
        self.is_open = True
        self._closing_at = None  # elapsed ms when the valve will be fully closed
        self.closed_by = None  # "trip" | "mechanical" | "hand"
        self.switch = SimPin("valve_switch", SimPin.IN, 1 - switch_closed_level)
        self.trip = SimPin("trip_coil", SimPin.OUT)
        self.trip.clock = clock
        if levels is None:
            from gasguard.valve import valve_config, pa_to_uv, flow_to_uv

            self.vcfg = vcfg = valve_config(cfg)
            supply_uv = supply_mv * 1000 * 1000 // int(vcfg["supply_divider"] * 1000)
            # the transducers' inverse models use floats (a heap object each on the ESP32):
            # evaluated once per change of the quantity, not per read
            levels = (lambda pa: pa_to_uv(vcfg, pa), lambda f: flow_to_uv(vcfg, f), supply_uv)
        self._pa_to_uv = _Cached(levels[0])
        self._flow_to_uv = _Cached(levels[1])
        self.pressure = SimAnalogIn(self._pressure_uv) if with_pressure else None
        self.flow = SimAnalogIn(self._flow_uv) if with_flow else None
        self.supply = SimAnalogIn(levels[2])
        self.trips_seen = 0
        self.openings = 0

    def _pressure_uv(self):
        return self._pa_to_uv(self.pressure_pa)

    def _flow_uv(self):
        return self._flow_to_uv(self._flow_now())

    def _flow_now(self):
        return self.flow_m3h_x1000 if self.is_open else 0

    def _start_close(self, why):
        if self.is_open and self._closing_at is None:
            self._closing_at = self.clock.elapsed_ms + self.travel_ms
            self.closed_by = why

    def step(self):
        if self.trip.value():
            if self.is_open and self._closing_at is None:
                self.trips_seen += 1
            self._start_close("trip")
        if self.is_open and self._closing_at is None:
            if self.pressure_pa >= self.mech_over_pa or self.pressure_pa <= self.mech_under_pa:
                self._start_close("mechanical")
            elif self.flow_m3h_x1000 >= self.mech_flow:
                self._start_close("mechanical")
        if self._closing_at is not None and self.clock.elapsed_ms >= self._closing_at:
            self.is_open = False
            self._closing_at = None
        self.switch.set_input(self.closed_level if not self.is_open else 1 - self.closed_level)

    def manual_reset(self):
        """A person lifts the knob: opens only if the line is back to normal."""
        if self.is_open:
            return False
        if self.pressure_pa >= self.mech_over_pa or self.pressure_pa <= self.mech_under_pa:
            return False
        self.is_open = True
        self._closing_at = None
        self.closed_by = None
        self.openings += 1
        self.switch.set_input(1 - self.closed_level)
        return True

    def manual_close(self):
        self._start_close("hand")

    def force(self, is_open):
        """Replay: the recorded position wins, whatever the model would do."""
        self.is_open = bool(is_open)
        self._closing_at = None
        if is_open:
            self.openings += 1
        self.switch.set_input(1 - self.closed_level if is_open else self.closed_level)
