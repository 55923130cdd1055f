"""ESP-NOW for the interlock link: the radio boundary object (send/poll) on the ESP32.

    radio = Radio(channel=1)
    radio.send(mac, frame) -> bool     # queued for transmission; never waits for the air
    radio.poll() -> (mac, frame) or None

Both ends of a link must be on the same Wi-Fi channel; when the station is also
associated with an access point, ESP-NOW uses the AP's channel, which a router restart
can move (espressif/arduino-esp32#878): pin the AP to the channel in the config.
The ESP-NOW MAC-layer ack is not trusted either way (a frame can arrive while its ack
is lost, and duplicates follow): gasguard's own ACK frames are the acknowledgement.
"""

import network
import espnow

BROADCAST = b"\xff\xff\xff\xff\xff\xff"


class Radio:
    def __init__(self, channel=1, rxbuf=1024):
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        if channel:
            try:
                self.wlan.config(channel=channel)
            except (OSError, ValueError):
                pass  # associated: the AP decides the channel
        self.en = espnow.ESPNow()
        try:
            self.en.config(rxbuf=rxbuf)
        except (OSError, ValueError, TypeError):
            pass
        self.en.active(True)
        self._peers = set()
        self.mac = self.wlan.config("mac")
        self.send_errors = 0

    def _peer(self, mac):
        if mac in self._peers:
            return
        try:
            self.en.add_peer(mac)
        except OSError as e:
            # ESP_ERR_ESPNOW_EXIST: already known to the driver
            if "EXIST" not in str(e):
                raise
        self._peers.add(mac)

    def send(self, mac, data):
        mac = bytes(mac)
        try:
            self._peer(mac)
            # sync=False: return at once; the result of the MAC-layer ack is not waited for
            return bool(self.en.send(mac, data, False))
        except OSError:
            self.send_errors += 1
            return False

    def poll(self):
        try:
            mac, msg = self.en.irecv(0)
        except OSError:
            return None
        if mac is None or msg is None:
            return None
        return bytes(mac), bytes(msg)


Esp32Radio = Radio
