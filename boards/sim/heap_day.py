"""A device's heap over a compressed day, assembled as its board main.py assembles it.

    micropython heap_day.py provision KIND TIER STORE_DIR   (the factory line, own process)
    micropython heap_day.py day KIND TIER STORE_DIR         (boot + the day; JSON lines)

KIND detector (TIER low|mid|high) or valve (TIER M). Run it on the ESP32-like interpreter
with `-X heapsize=112k` and the firmware as .mpy, as deployed (gasguard_tools.bench_heap).

The day, on the simulated clock, every part the tier has (Wi-Fi reporting through the
strict fake network + a broker that answers, ESP-NOW link, active identifier, console):
boot, warm-up, registration and heartbeats, a methane alarm, a CO alarm, a console session
(HELLO STATUS? READ? LOG? HIST? CFG? CAL? ID?) with a CFG write, a broker outage with an
alarm queued in the outbox, the reconnect and its flush, and quiet hours. At each
checkpoint the runner collects garbage and prints {"at", "alloc", "free", "max_block"}
(max_block: the largest bytearray that can be allocated, found by bisection). Transient
peaks between checkpoints are what a run at a smaller heap proves: the host runs the same
day at `-X heapsize=72k` (112k minus the 40 KB to keep free) and it must end with "end".
"""

import gc
import json
import sys

import micropython

gc.collect()
_BASE = gc.mem_alloc()  # main(base) moves it to the runner's baseline, before this module's code

# The firmware modules the harness's own code imports (simboard: gasguard.ticks and
# gasguard.store; reporting_fakes: gasguard.mqtt, its broker side), loaded here first, one
# by one, each one's heap measured. The device keeps store and (when it reports) mqtt
# resident: their bytes are the device's, not the harness's (device_shared()). ticks is in
# no deploy set (bench_heap.HARNESS_MODULES): the harness's.
# The qstr count before and after each (bench_heap: which names are the harness's own).
SHARED = {}
micropython.qstr_info()
print('{"at": "shared", "m": ""}')
for _m in ("gasguard", "gasguard.ticks", "gasguard.store", "gasguard.mqtt"):
    gc.collect()
    _a = gc.mem_alloc()
    __import__(_m)
    gc.collect()
    SHARED[_m] = gc.mem_alloc() - _a
    micropython.qstr_info()
    print('{"at": "shared", "m": "%s"}' % _m)
HARNESS_ONLY = ("gasguard.ticks",)

from simboard import SimAnalogIn, SimClock, SimConsole  # noqa: E402

DEV_ID = "88.118.8/GDH.240915.00123F"
KEY = bytes(range(1, 33))
LINK_KEY = bytes(range(32))
FACTORY_KEY = bytes(range(64, 96))  # `gasguard flash --install-factory-key` writes data/factory.key
DET_MAC = b"\x02\x00\x00\x00\x00\x01"
VALVE_MAC = b"\x02\x00\x00\x00\x00\x02"
REPORT = {"base": "gg", "commands": True,
          "mqtt": {"host": "10.0.0.9", "backoff_min_ms": 500, "backoff_max_ms": 4000}}


class Pin:
    """A pin that records nothing (the heap figures are the device's, not the harness's)."""

    def __init__(self, level=0):
        self.level = level

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

    def on(self):
        self.level = 1

    def off(self):
        self.level = 0


class Env:
    def __init__(self):
        self.ppm_x10 = {"ch4": 0, "co": 0}
        self.models = {}

    def source(self, gas):
        def read():
            m = self.models.get(gas)
            return m.uv(self.ppm_x10[gas]) if m is not None else 400000

        return read


class DetectorBoard:
    BUTTON_AT_BOOT = 1  # held at power-up: factory mode by physical presence (soak.py: 0)

    def __init__(self, clock, env):
        self.clock = clock
        self.console = SimConsole()
        self.adc_ch4 = SimAnalogIn(env.source("ch4"))
        self.adc_co = SimAnalogIn(env.source("co"))
        self.adc_supply = SimAnalogIn(1650000)
        for n in ("led_green", "led_yellow", "led_red", "buzzer", "relay", "heater", "valve_out"):
            setattr(self, n, Pin())
        self.button = Pin(self.BUTTON_AT_BOOT)

    def reset_cause(self):
        return "power_on"

    def reboot(self):
        pass


class ValveBoard:
    """The valve's board for the day: line pressure and flow as fixed uV levels computed
    before boot (so the harness holds no firmware code: simvalve's transducer models would
    keep gasguard.valve_cfg loaded), the trip coil closing the valve after its travel, the
    position switch (1 = closed), the console and the button."""

    BUTTON_AT_BOOT = 1

    def __init__(self, clock, radio, levels):
        self.clock = clock
        self.radio = radio
        self.levels = levels
        self.pressure_uv = levels["p_ok"]
        self.is_open = True
        self._closing_at = None
        self.pressure = SimAnalogIn(lambda: self.pressure_uv)
        self.flow = SimAnalogIn(lambda: levels["flow"] if self.is_open else levels["flow0"])
        self.supply = SimAnalogIn(levels["supply"])
        self.switch = Pin(0)
        self.trip = Pin(0)
        self.console = SimConsole()
        self.button = Pin(self.BUTTON_AT_BOOT)

    def step(self):
        if self.is_open and self._closing_at is None and (
                self.trip.level or self.pressure_uv == self.levels["p_over"]):
            self._closing_at = self.clock.ticks_add(self.clock.ticks_ms(), 800)
        if self._closing_at is not None and self.clock.ticks_diff(self.clock.ticks_ms(),
                                                                   self._closing_at) >= 0:
            self.is_open = False
            self._closing_at = None
            self.switch.level = 1

    def reset_cause(self):
        return "power_on"

    def reboot(self):
        pass


LEVELS = "/.heapday_levels"  # in the store's folder (a dot file: the store lists none)


# Both boards' main.py set gc.threshold(8192) first (a collection after every 8 KB allocated:
# the boot's garbage reused before fresh heap is taken); test_valve_board and
# test_detector_board check it is the same.
GC_EVERY = 8192


def valve_levels():
    """uV of the normal and the over-pressure line, the flow, the supply. Computed by the
    factory line's process (provision) and read from the store's folder by the day: the
    day's harness loads no config code (gasguard.valve_cfg would leave gasguard.validate and
    gasguard.service_proto loaded, credited to the harness although the device keeps them)."""
    from gasguard import valve_cfg as V

    c = V.valve_config(None)
    return {"p_ok": V.pa_to_uv(c, 2000), "p_over": V.pa_to_uv(c, 9000),
            "flow": V.flow_to_uv(c, 500), "flow0": V.flow_to_uv(c, 0),
            "supply": 3600 * 1000 * 1000 // int(c["supply_divider"] * 1000)}


def read_levels(root):
    with open(root + LEVELS) as f:
        return json.loads(f.read())


NET = {"net": {"ssid": "x", "password": "y"}, "report": REPORT, "identity": {"heartbeat_s": 600}}


def detector_config(tier, local):
    cfg = {"detector": {"profile": "cn", "tier": tier}}
    if not local:
        cfg.update(NET)
    if tier != "low":
        cfg["link"] = {}
    return cfg


def valve_config(local):
    cfg = {"valve": {"tier": "M", "link": {}}}
    if not local:
        cfg.update(NET)
    return cfg


def provision(kind, tier, root):
    """What the factory line writes: identity + key, the ESP-NOW pairing, the calibration."""
    from gasguard.identity import IdentityStore
    from gasguard.interlock_keys import provision as pair
    from gasguard.store import FileStore

    store = FileStore(root)
    ids = IdentityStore(store)
    ids.provision({"id": DEV_ID, "model": "GG-200", "hw_rev": "1.2"}, KEY)
    ids.lock()
    store.write("factory.key", FACTORY_KEY)
    if kind == "detector":
        from gasguard import calibration, sensors

        pair(store, "D", LINK_KEY, VALVE_MAC)
        rec = calibration.CalibrationRecord()
        for gas, model in (("ch4", {"model": "mq4"}), ("co", {"model": "ec_co"})):
            try:
                m = sensors.from_config(model)
            except Exception:
                continue
            span = 50000 if gas == "ch4" else 1000
            rec = rec.with_zero(model, m.uv(0), 20260101, "line")
            rec = rec.with_span(model, m.uv(span), span, 20260101, "line")
        calibration.save(store, rec)
    else:
        pair(store, "V", LINK_KEY, DET_MAC)
        with open(root + LEVELS, "w") as f:
            f.write(json.dumps(valve_levels()))
    print(json.dumps({"provisioned": kind}))


def device_shared(local):
    """The firmware modules the harness loaded before the device boots that the device keeps
    resident too (so counted as the device's): the package, the store, and the MQTT client
    when the device reports (a device installed without Wi-Fi never loads it)."""
    return [m for m in SHARED if m not in HARNESS_ONLY and not (local and m == "gasguard.mqtt")]


def stub_port_modules():
    """The ESP32 port's built-in network and espnow (no heap on the chip: C modules), as
    empty stand-ins so the board files import (their module level only imports them; every
    use is in a function the sim never calls). machine and select are the unix port's."""
    class _PortModule:
        pass

    for m in ("network", "espnow"):
        if m not in sys.modules:
            sys.modules[m] = _PortModule


def board_code(kind, cfg):
    """What the chip keeps resident besides the gasguard package: the board files, deployed
    as source by `gasguard flash` and compiled on the chip (boards/esp32-common/esp32_hal and
    the board's pins; esp32_net when it has Wi-Fi and esp32_radio when it has a link, which
    esp32_hal imports in wifi() / radio()), and main.py's code (the port compiles main.py and
    runs it for ever: its code object stays). bench_heap copies them beside the deploy set;
    the device's figures count them."""
    import esp32_hal
    from pins import PINS

    out = [esp32_hal, PINS]
    if cfg.get("net"):
        import esp32_net

        out.append(esp32_net)
    if cfg.get("link") is not None or kind == "valve":
        import esp32_radio

        out.append(esp32_radio)
    for p in sys.path:
        try:
            with open(p + "/main.py" if p else "main.py") as f:  # "": the chip's root
                src = f.read()
        except OSError:
            continue
        out.append(compile(src, "main.py", "exec"))
        src = None
        return out
    raise ImportError("main.py of the board (bench_heap copies it beside the deploy set)")


def max_block():
    lo, hi = 0, gc.mem_free()
    while hi - lo > 16:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            del b
            lo = mid
        except MemoryError:
            hi = mid
    b = None
    _scrub(24)
    return lo


def _scrub(n):
    """Overwrite the interpreter's stack below the caller: a probe of max_block() (up to
    the whole free heap) must not stay referenced from a stale stack slot, which the
    conservative collector scans (the device would boot into a heap the harness filled:
    MemoryError at boot at random heap sizes)."""
    a = b = c = d = e = f = g = h = 0
    if n:
        _scrub(n - 1)
    return a + b + c + d + e + f + g + h


class Day:
    def __init__(self, kind, tier, root, local=False):
        self.kind = kind
        self.local = local
        self.minfree = None
        self.minblock = None
        self.console_failed = []  # console requests not answered OK (ask())
        self.published = 0
        self.clock = clock = SimClock()
        from reporting_fakes import AutoBroker, FakeNet
        from simradio import SimAir

        self.net = FakeNet()
        self.broker = AutoBroker(self.net)
        self.air = SimAir(clock, 1, 0)
        self.env = Env()
        self.levels = read_levels(root) if kind == "valve" else None
        stub_port_modules()
        # the harness: everything allocated since the baseline (heap_day's and the sim's
        # code, the fakes, these objects) but the firmware modules the device keeps
        gc.collect()
        shared = device_shared(local)
        credit = sum(SHARED[m] for m in shared)
        self.harness = gc.mem_alloc() - _BASE - credit
        self.point("harness", {"harness": self.harness, "shared": shared, "credit": credit,
                               "shared_bytes": SHARED,
                               "gasguard": sorted(m for m in sys.modules
                                                  if m.split(".")[0] == "gasguard")})
        self.base = gc.mem_alloc()
        self.boot(kind, tier, root)

    def boot(self, kind, tier, root):
        """What boards/esp32-*/main.py does, with the simulated board objects."""
        from gasguard import lazy

        gc.threshold(GC_EVERY)  # first of all, as boards/esp32-*/main.py do
        # first, as main.py does: the boot's names while the heap is empty; a low-tier
        # detector installed without Wi-Fi gets no gasguard/names.mpy (gasguard_tools.prime.primed)
        if not (self.local and tier == "low"):
            lazy.prime()
        from gasguard import VERSION, devices
        from gasguard.store import FileStore

        cfg = detector_config(tier, self.local) if kind == "detector" else valve_config(self.local)
        self.board_code = board_code(kind, cfg)
        store = FileStore(root)
        if kind == "detector":
            from gasguard.app import DetectorApp

            board = DetectorBoard(self.clock, self.env)
            app = DetectorApp(board, store, cfg, board_name="heap-day")
            self.point("boot_app")
            cfg = app.config
            if cfg.get("link") is not None:
                devices.attach_interlock(app, self.air.radio(DET_MAC), store, cfg)
                self.point("boot_link")
            for ch in app._channels().values():
                self.env.models[ch.gas] = ch.model
        else:
            from gasguard.valve_app import ValveApp

            board = ValveBoard(self.clock, self.air.radio(VALVE_MAC), self.levels)
            app = ValveApp(board, store, cfg, board_name="heap-day")
            self.point("boot_app")
            cfg = app.config
        if cfg.get("net") and cfg.get("report"):
            ident = app.identity.identity_info(VERSION)
            rep = devices.attach_reporter(app, self.clock, store, ident, cfg, self.net,
                                          app.identity.device_key(), rand=lambda n: n // 2)
            self.point("boot_reporter")
            devices.attach_active_id(app, rep, app.identity, cfg)
        del devices  # boot-only, as main.py drops it before its loop
        lazy.after_boot()  # as main.py does before its loop
        self.app = app
        self.board = board
        self.point("boot")

    def point(self, at, extra=None):
        micropython.qstr_info()  # "qstr pool: n_pool=.., n_qstr=.., ..": bench_heap reads it
        gc.collect()
        free = gc.mem_free()
        alloc = gc.mem_alloc() - _BASE
        blk = max_block()
        if self.minfree is None or free < self.minfree:
            self.minfree = free
        if self.minblock is None or blk < self.minblock:
            self.minblock = blk
        d = {"at": at, "alloc": alloc, "free": free, "max_block": blk}
        if extra:
            d.update(extra)
        print(json.dumps(d))

    def run(self, ms, step=100):
        app = self.app
        board = self.board
        broker = self.broker
        valve = self.kind == "valve"
        for _ in range(ms // step):
            self.clock.advance(step)
            if valve:
                board.step()
            app.poll()
            broker.service()
            if broker.published:
                self.published += len(broker.published)
                broker.published = []
            net = self.net
            socks = net.sockets
            if len(socks) > 1 or net.connects:
                # the fake network's own log and the sockets the device closed (kept with
                # their buffers): the network stack's on the chip, gone with the connection,
                # so not the device's heap (as the soak harness drops them)
                net.connects = []
                for i in range(len(socks) - 1, -1, -1):
                    if socks[i].closed:
                        socks.pop(i)

    def ask(self, line, unsupported=False):
        """One console request; an answer other than OK is kept for the end line (a part
        of the day that did not happen is not a day that fits). unsupported: ERR
        E_UNSUPPORTED is this device's right answer (the valve has no CAL?)."""
        con = self.board.console
        con.feed(line + "\n")
        self.run(300)
        out = con.take_output()
        if out[:2] == b"OK" or (unsupported and out[:17] == b"ERR E_UNSUPPORTED"):
            return out
        self.console_failed.append("%s: %s" % (line, bytes(out[:120]).decode().strip()))
        return None

    def factory_auth(self):
        """AUTH as a technician's tool does it (gasguard_tools.serialdev): the challenge,
        HMAC-SHA256 over it with the factory key, the response. Harness code: the host's
        side of the exchange, written out rather than gasguard.service_factory.auth_response,
        which the harness would load into the device's heap outside any console request."""
        import hashlib

        out = self.ask("AUTH")
        if out is None:
            return
        nonce = json.loads(bytes(out[3:]).decode())["nonce"]
        msg = ("GGSP1-FACTORY:%s:%s" % (nonce, DEV_ID)).encode()
        k = FACTORY_KEY + bytes(64 - len(FACTORY_KEY))
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in k) + msg).digest()
        tag = hashlib.sha256(bytes(b ^ 0x5C for b in k) + inner).digest()
        self.ask("AUTH " + "".join("%02x" % b for b in tag))

    def day(self):
        det = self.kind == "detector"
        self.run(240000)  # warm-up, Wi-Fi + broker up, registration
        self.point("warm")
        if det:
            self.env.ppm_x10["ch4"] = 200000
            self.run(120000)
            self.point("ch4_alarm")
            self.env.ppm_x10["ch4"] = 0
            self.env.ppm_x10["co"] = 4000
            self.run(600000, 500)
            self.point("co_alarm")
            self.env.ppm_x10["co"] = 0
            self.run(120000)
        else:
            self.board.pressure_uv = self.levels["p_over"]  # over-pressure: the valve closes
            self.run(30000)
            self.board.pressure_uv = self.levels["p_ok"]
            self.point("valve_closed")
        for line in ("HELLO", "STATUS?", "READ?", "LOG? 20", "HIST?", "CFG?", "CAL?", "ID?",
                     "HELP", "FACTORY?"):
            self.ask(line, unsupported=line == "CAL?" and not det)
        self.point("console")
        # a technician's config change: factory mode by the key (the button's window at
        # power-up has closed on the detector by now), the write, the end of factory mode
        self.factory_auth()
        if det:
            self.ask("CFG detector.hush_s 240")
        else:
            self.ask("CFG app.history_period_s 120")
        self.ask("AUTH END")
        self.point("cfg_write")
        self.net.mode = "unreachable"
        if self.net.last is not None:
            self.net.last.peer_closed = True
        self.run(60000)
        if det:
            self.env.ppm_x10["ch4"] = 200000
            self.run(60000)
            self.env.ppm_x10["ch4"] = 0
        self.run(240000, 500)
        self.point("outage")
        self.net.mode = "ok"
        self.run(120000)
        self.point("reconnected")
        self.run(3600000, 1000)  # quiet hour: telemetry, heartbeats, link heartbeats
        self.point("quiet")
        st = self.app.status()
        print(json.dumps({"at": "end", "console_failed": self.console_failed,
                          "min_free": self.minfree,
                          "min_block": self.minblock, "boot_alloc": None,
                          "published": self.published,
                          "outbox": st.get("outbox_depth"), "errors": st.get("last_errors"),
                          "error_count": self.app.error_count,
                          "modules": sorted(m for m in sys.modules if m.startswith("gasguard")),
                          "board": sorted(m for m in sys.modules
                                          if m.startswith("esp32_") or m == "pins")}))


def main(base=None):
    """base: gc.mem_alloc() of the runner before `import heap_day` (bench_heap), so heap_day's
    own code is in the harness figure, not in the device's share of the heap."""
    global _BASE
    if base is not None:
        _BASE = base
    if sys.argv[1:2] == ["pre"]:  # bench_soak: the runner's baseline only
        return
    what, kind, tier, root = sys.argv[1:5]
    tier, _, variant = tier.partition("/")  # "mid/local": no Wi-Fi, no reporting
    if what == "provision":
        provision(kind, tier, root)
    else:
        Day(kind, tier, root, variant == "local").day()
        if what == "names":  # every interned name, so every module loaded (host_tests/heap/
            micropython.qstr_info(1)  # test_prime_names.py: their __file__ names)


if __name__ == "__main__":  # imported by soak.py for the device assembly
    main()
