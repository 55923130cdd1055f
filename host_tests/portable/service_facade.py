"""The read-only half of a device facade for the service console (gasguard.service): what
the console's query verbs ask of a device, with fixed answers. The console tests
(service/test_service_props.py and its differential driver drivers/service.py) subclass it
with their own record of what changes the device."""


class FacadeStub:
    identity = None

    def info(self):
        return {"fw": "x"}

    def factory_key(self):
        return b"k" * 32

    def status(self):
        return {}

    def readings(self):
        return {}

    def events(self, n):
        return []

    def config_get(self, key=None):
        return {"a": 1}

    def cal_get(self):
        return {}
