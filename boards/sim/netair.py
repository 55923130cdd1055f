"""The simulated ESP-NOW air between devices in separate processes: UDP on loopback.

    air = NetAir(("127.0.0.1", port), mac, seed, loss_pct)   # relay: gasguard_tools.sim_pair.AirRelay
    air.radio                                # send(mac, data) -> bool, poll() -> (mac, data) | None
    air.hello(); air.wait()                  # ready; the relay starts the clock when all are
    air.barrier()                            # end of a time slice: wait for the next one
    air.bye()                                # leaving (the relay stops waiting for us)

Each device runs in its own MicroPython process, with its own heap, as on two chips. The
relay owns the air: it applies the frame loss (seeded, per sender, so a run is repeatable),
forwards what survives, and keeps time: every process advances its SimClock by one slice,
calls barrier(), and gets the next slice when every device has finished this one (and real
time allows, at --speed). A frame sent during a slice is delivered in the next one, so both
devices' clocks stay within one slice and the order of events does not depend on which
process the host's scheduler runs first.

Loss is decided where the frame is sent (seeded per device, so a run is repeatable), so
send() returns False for a lost frame as ESP-NOW does for a unicast nobody acknowledged;
the relay forwards what is on the air and counts it. A receive queue holds RX_QUEUE
frames, like the driver's buffer; more are dropped and counted as overflow.

Datagrams (device <-> relay): b"H" + mac (hello), b"F" + dst/src mac + data (a frame),
b"T" (slice done), b"G" (next slice), b"E" (bye). The transport itself allocates one small
bytes object per slice (the relay's "G": a socket's readinto() waits to fill its buffer, so
datagrams are read with recv()); the loop turns between meetings allocate nothing for it.
"""

import select
import socket

from simradio import MAX_LEN, Rng, SimRadio, _mac

_WAIT_MS = 30000  # a relay silent this long is gone: stop instead of hanging
_BUF = MAX_LEN + 7
_T = b"T"
RX_QUEUE = 16


class NetRadio(SimRadio):
    """espnow-like radio of one device on the NetAir (sends through NetAir.transmit)."""

    def poll(self):
        if not self.inbox:
            return None
        self.received += 1
        return self.inbox.pop(0)


class NetAir:
    def __init__(self, relay, mac, seed=1, loss_pct=0):
        host, port = relay
        mac = _mac(mac)
        self.rng = Rng(seed * 256 + mac[5])
        self.loss_pct = loss_pct
        self.stats = {"sent": 0, "dropped": 0, "overflow": 0}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
        self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        self.tx = bytearray(_BUF)
        self.radio = NetRadio(self, mac)

    def transmit(self, src, dst, data):
        st = self.stats
        st["sent"] += 1
        if self.loss_pct and self.rng.pct(self.loss_pct):
            st["dropped"] += 1
            return False
        tx = self.tx
        tx[0] = 70  # "F"
        tx[1:7] = dst
        n = len(data)
        tx[7:7 + n] = data
        self.sock.write(tx, 7 + n)
        return True

    def hello(self):
        self.sock.write(b"H" + self.radio.mac)

    def bye(self):
        try:
            self.sock.write(b"E")
        except OSError:
            pass  # the relay has gone already

    def barrier(self):
        """This slice is done: take in what the relay forwards until it says go on."""
        self.sock.write(_T)
        self.wait()

    def wait(self):
        """Take in what the relay forwards until it says go on ("G")."""
        while True:
            got = False
            for _obj, _ev in self.poller.ipoll(_WAIT_MS):
                got = True
            if not got:
                raise OSError("the simulated air (relay) stopped answering")
            rx = self.sock.recv(_BUF)  # (readinto waits to fill the buffer: not for datagrams)
            n = len(rx)
            if not n:
                continue
            kind = rx[0]
            if kind == 71:  # "G"
                return
            if kind == 70 and n > 7 and self.radio.active:  # "F": a frame for us
                inbox = self.radio.inbox
                if len(inbox) >= RX_QUEUE:
                    self.stats["overflow"] += 1
                    continue
                inbox.append((rx[1:7], rx[7:]))
