PINS = {}
