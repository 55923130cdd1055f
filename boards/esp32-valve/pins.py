"""Pin map of the gasguard valve controller board (ESP32-WROOM-32E), as data.

Same format as boards/esp32-detector/pins.py (esp32_hal.Board builds the objects):
adc:  name -> GPIO (ADC1 only: ADC2 is unusable while Wi-Fi/ESP-NOW is on)
out:  name -> (GPIO, active_low)
in:   name -> (GPIO, pull_up, active_low)
rs485: the Modbus RTU line (docs/modbus.md): UART number, TX/RX GPIO, and the
       transceiver's driver-enable (DE, with /RE tied to it) as (GPIO, active_low)
The names are the attributes gasguard.valve.ValveController reads (docs/valve.md).
"""

PINS = {
    "adc": {
        "pressure": 34,  # inlet pressure transducer, 0.5-4.5 V scaled into 0.5-2.5 V
        "flow": 35,  # analog flow transducer (flow_mode "analog"); pulse meters use PCNT
        "supply": 36,  # battery / supply through a 1:2 divider
    },
    "out": {
        "trip": (13, False),  # trip coil MOSFET: 1 = energised (releases the latch)
        "led_green": (25, False),
        "led_red": (27, False),
    },
    "in": {
        "switch": (32, True, True),  # position switch to GND when the valve is closed: 1 = closed
        "button": (0, True, True),  # pairing (hold 3 s) / local close (short press)
    },
    "rs485": {"uart": 2, "tx": 17, "rx": 16, "de": (4, False)},  # MAX3485-class transceiver
}
