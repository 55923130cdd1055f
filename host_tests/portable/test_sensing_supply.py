"""SupplyMonitor: millivolts through the divider, low-supply fault with hysteresis."""

from gasguard.sensors import SupplyMonitor
from gasguard.validate import ConfigError
from ptest import raises
from simboard import SimAnalogIn, SimClock


def _mon(cfg=None):
    adc = SimAnalogIn(2500000)
    return SupplyMonitor(adc, SimClock(), cfg or {}), adc


def test_millivolts_through_the_divider():
    s, adc = _mon()
    assert s.sample() == 5000
    adc.source = 1234567
    assert s.sample() == 2469
    s2, adc2 = _mon({"divider": 4.0})
    adc2.source = 3000000
    assert s2.sample() == 12000


def test_low_supply_debounce_and_hysteresis():
    s, adc = _mon()
    adc.source = 2200000  # 4.4 V
    s.sample()
    s.sample()
    assert s.fault is None
    s.sample()
    assert s.fault == "supply_low"
    adc.source = 2300000  # 4.6 V: inside the band, stays low
    for _ in range(10):
        s.sample()
    assert s.fault == "supply_low"
    adc.source = 2350000  # 4.7 V
    s.sample()
    s.sample()
    assert s.fault == "supply_low"
    s.sample()
    assert s.fault is None


def test_brief_dip_is_not_a_fault():
    s, adc = _mon()
    for v in (2200000, 2200000, 2500000, 2200000, 2500000):
        adc.source = v
        s.sample()
    assert s.fault is None


def test_bad_config():
    for cfg in ({"divider": 0.5}, {"low_mv": 10}, {"count": 0}, {"x": 1}, []):
        raises(ConfigError, SupplyMonitor, SimAnalogIn(0), SimClock(), cfg)


def test_sample_allocates_nothing():
    import sys

    if sys.implementation.name != "micropython":
        return
    import gc

    s, adc = _mon()
    vals = [2200000, 2400000, 2500000]
    k = [0]

    def src():
        k[0] = (k[0] + 1) % 3
        return vals[k[0]]

    adc.source = src
    for _ in range(10):
        s.sample()
    gc.collect()
    gc.disable()
    try:
        b = gc.mem_alloc()
        i = 0
        while i < 200:
            s.sample()
            i += 1
        grown = gc.mem_alloc() - b
    finally:
        gc.enable()
    assert grown == 0, grown
