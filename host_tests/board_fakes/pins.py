PINS = {
    # the RS-485 transceiver both boards have (main.py attaches Modbus when the config asks)
    "rs485": {"uart": 2, "tx": 17, "rx": 16, "de": (4, False)},
}
