"""Every kind of sensing channel against the same interface and the one fault table
(gasguard.sensing; issue 11 item 4): the ADC Channel, the UART module (UartChannel) and the
test doubles the detector tests use. Runs on CPython and both MicroPythons.

Before, sensor_uart.F_COMM = 1 was the same bit as the ADC channel's short bit: a UART CO sensor that
stopped talking was reported by the detector as co:sensor_short."""

from gasguard import sensing as faults, sensors
from gasguard.sensors import Channel
from gasguard.detector import Detector
from gasguard.sensor_uart import UartChannel, make_frame
from detector_fakes import FakeCh, FakeSupply, Board as FakeBoard
from simboard import SimAnalogIn, SimClock, SimConsole, SimPin

ATTRS = ("gas", "ppm_x10", "raw_uv", "fault", "warming_up", "over_range", "fault_bits",
         "reading_valid")


def _adc(clock):
    m = sensors.from_config({"model": "ec_co"})
    return Channel(SimAnalogIn(m.clean_air_uv), clock, m, None, {"warmup_s": 0})


def _uart(clock):
    return UartChannel(SimConsole(), clock, {"warmup_s": 0})


class FullFake(FakeCh):
    """The detector tests' scripted channel with the full attribute set."""

    def __init__(self, gas):
        FakeCh.__init__(self, gas)
        self.fault_bits = 0
        self.reading_valid = True


KINDS = (("adc", _adc), ("uart", _uart), ("fake", lambda clock: FullFake("co")))


def _conforms(ch):
    for a in ATTRS:
        assert hasattr(ch, a), a
    assert ch.fault is None or ch.fault in faults.FAULT_CODES, ch.fault
    bits = ch.fault_bits
    assert bits & ~sum(faults.FAULT_BITS) == 0
    if bits:  # the top fault is the highest-priority set bit of the one table
        i = 0
        while not bits & faults.FAULT_BITS[i]:
            i += 1
        assert ch.fault == faults.FAULT_CODES[i], (ch.fault, bits)
    else:
        assert ch.fault is None
    assert ch.reading_valid == (not bits & faults.INVALIDATING)
    if not ch.reading_valid:
        assert ch.ppm_x10 == 0


def test_every_channel_kind_has_the_interface_and_uses_the_one_fault_table():
    for name, make in KINDS:
        clock = SimClock()
        ch = make(clock)
        _conforms(ch)
        for _ in range(5):
            ch.sample()
            clock.advance(1000)
            _conforms(ch)
        if hasattr(ch, "set_age_days"):
            ch.set_age_days(4000)  # past any service life
            _conforms(ch)
            assert ch.fault_bits & faults.F_EOL, name


def test_fault_bits_and_codes_are_one_table():
    assert len(faults.FAULT_CODES) == len(faults.FAULT_BITS) == faults.N_FAULTS
    assert len(set(faults.FAULT_BITS)) == faults.N_FAULTS
    for b in faults.FAULT_BITS:
        assert b & (b - 1) == 0  # one bit each
    inv = 0
    for c in ("sensor_short", "sensor_open", "out_of_range", "sensor_stuck", "sensor_comm"):
        inv |= faults.FAULT_BITS[faults.FAULT_CODES.index(c)]
    assert inv == faults.INVALIDATING


def _detector_with_uart_co():
    b = FakeBoard()
    b.clock = SimClock()
    for n in ("led_green", "led_yellow", "led_red", "buzzer", "relay"):
        p = SimPin(n, SimPin.OUT)
        p.clock = b.clock
        setattr(b, n, p)
    uart = SimConsole()
    co = UartChannel(uart, b.clock, {"warmup_s": 0, "timeout_s": 5})
    ch4 = FullFake("ch4")
    evs = []
    d = Detector(b, {"profile": "cn", "tier": "mid"}, None, evs.append,
                 channels={"ch4": ch4, "co": co}, supply=FakeSupply())
    return b, d, uart, evs


def test_a_silent_uart_co_sensor_is_sensor_comm_not_sensor_short():
    b, d, uart, evs = _detector_with_uart_co()
    for _ in range(3):
        uart.feed(make_frame(50))
        d.poll()
        b.clock.advance(1000)
    assert d.status()["co"]["fault"] is None
    for _ in range(10):  # the module stops talking
        d.poll()
        b.clock.advance(1000)
    faults_now = d.faults()
    assert "co:sensor_comm" in faults_now and "co:sensor_short" not in faults_now, faults_now
    on = [e["code"] for e in evs if e.get("event") == "fault" and e.get("state") == "on"]
    assert "sensor_comm" in on and "sensor_short" not in on, on
