"""Wi-Fi for the reporter: start association and never wait for it.

The station connects in the background (network.WLAN.connect returns at once); the
reporter's MQTT client sees connect errors until the link is up and backs off, so the
alarm loop never waits on Wi-Fi. The broker address must be numeric (docs/protocol.md:
getaddrinfo blocks on the ESP32, so DNS is not used on the device).
"""

import network


class WiFi:
    def __init__(self, ssid, password, hostname=None):
        self.ssid = ssid
        self.password = password
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        if hostname:
            try:
                network.hostname(hostname)
            except (AttributeError, ValueError):
                pass
        self._started = False

    def poll(self):
        if not self.ssid:
            return
        if not self.wlan.isconnected() and not self._started:
            self.wlan.connect(self.ssid, self.password)
            self._started = True
        elif self.wlan.isconnected():
            self._started = False

    def isconnected(self):
        return self.wlan.isconnected()

    def channel(self):
        """ESP-NOW peers must share the AP's channel (docs/interlock.md)."""
        try:
            return self.wlan.config("channel")
        except (OSError, ValueError):
            return None
