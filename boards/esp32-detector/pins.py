"""Pin map of the gasguard detector board (ESP32-WROOM-32E), as data.

adc:  name -> GPIO (ADC1 only: ADC2 is unusable while Wi-Fi is on)
out:  name -> (GPIO, active_low)
in:   name -> (GPIO, pull_up, active_low)
rs485: the Modbus RTU line (docs/modbus.md): UART number, TX/RX GPIO, and the
       transceiver's driver-enable (DE, with /RE tied to it) as (GPIO, active_low)
"""

PINS = {
    "adc": {
        "adc_ch4": 34,  # MQ-4 / TGS2611 load-resistor divider, scaled to <= 2.45 V
        "adc_co": 35,  # electrochemical CO cell after the transimpedance stage
        "adc_supply": 36,  # supply rail through a 1:6 divider
        "adc_interlock_sense": 39,  # wired interlock line supervision
    },
    "out": {
        "led_green": (25, False),
        "led_yellow": (26, False),
        "led_red": (27, False),
        "buzzer": (14, False),  # driver transistor for a self-oscillating piezo
        "relay": (13, False),  # alarm relay / wired shut-off output
        "heater": (12, False),  # MOS heater enable
    },
    "in": {
        "button": (0, True, True),  # test / hush; held at boot = factory presence
    },
    "rs485": {"uart": 2, "tx": 17, "rx": 16, "de": (4, False)},  # MAX3485-class transceiver
}
