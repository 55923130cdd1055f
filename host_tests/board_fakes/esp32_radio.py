class Radio:
    def __init__(self, channel=1):
        self.channel = channel

    def send(self, mac, data):
        return True

    def poll(self):
        return None
