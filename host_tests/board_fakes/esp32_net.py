class WiFi:
    name = "wifi"

    def __init__(self, ssid, password, hostname=None):
        self.ssid = ssid
        self.hostname = hostname

    def poll(self):
        pass

    def status(self):
        return {"ssid": self.ssid, "hostname": self.hostname}
