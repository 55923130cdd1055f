"""A small embedded MQTT 3.1.1 broker (pure Python, asyncio) for `gasguard sim`.

Enough for the simulator and the monitor, with no root and no system package:
CONNECT/CONNACK (clean sessions only), PUBLISH QoS 0/1 (PUBACK), retained messages,
Last Will (published when a connection ends without DISCONNECT, including keepalive
expiry at 1.5 x keepalive), SUBSCRIBE/UNSUBSCRIBE with + and # filters, PINGREQ.
QoS 2 is refused (granted QoS is capped at 1). Not a production broker: no auth, no
persistence, no session state across connections, no flow control.

    b = Broker("127.0.0.1", 0); port = b.start_in_thread()   # or: await b.start()
    ...; b.stop()

`python -m gasguard_tools.broker --port 1883` runs one in the foreground.
"""

import argparse
import asyncio
import struct
import threading


def topic_matches(filt, topic):
    """MQTT filter matching with + (one level) and # (this level and below)."""
    f = filt.split("/")
    t = topic.split("/")
    if topic.startswith("$") and f[0] in ("+", "#"):
        return False
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


def valid_filter(filt):
    if not filt:
        return False
    parts = filt.split("/")
    for i, p in enumerate(parts):
        if "#" in p and (p != "#" or i != len(parts) - 1):
            return False
        if "+" in p and p != "+":
            return False
    return True


def _enc_str(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!H", len(b)) + b


def _packet(first, body):
    n = len(body)
    rl = bytearray()
    while True:
        d = n & 0x7F
        n >>= 7
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body


class ProtocolError(Exception):
    pass


class _Conn:
    def __init__(self, broker, reader, writer):
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.client_id = None
        self.subs = {}  # filter -> qos
        self.will = None
        self.keepalive = 0
        self.pid = 0
        self.clean_exit = False

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def send(self, data):
        if not self.writer.is_closing():
            self.writer.write(data)

    def deliver(self, topic, payload, qos, retain):
        first = 0x30 | (qos << 1) | (1 if retain else 0)
        body = _enc_str(topic)
        if qos:
            body += struct.pack("!H", self.next_pid())
        self.send(_packet(first, body + payload))

    async def read_packet(self):
        timeout = self.keepalive * 1.5 if self.keepalive else None
        head = await asyncio.wait_for(self.reader.readexactly(1), timeout)
        n = 0
        mult = 1
        while True:
            b = (await self.reader.readexactly(1))[0]
            n += (b & 0x7F) * mult
            if not b & 0x80:
                break
            mult <<= 7
            if mult > 0x200000:
                raise ProtocolError("bad remaining length")
        body = await self.reader.readexactly(n) if n else b""
        return head[0], body


class Broker:
    def __init__(self, host="127.0.0.1", port=0, log=None):
        self.host = host
        self.port = port
        self.log = log
        self.retained = {}  # topic -> (payload, qos)
        self.conns = set()
        self.by_id = {}
        self._server = None
        self._loop = None
        self._thread = None
        self.published = 0

    def _log(self, msg):
        if self.log:
            self.log(msg)

    async def start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def start_in_thread(self):
        """Run the broker on its own event loop in a daemon thread; return the port."""
        ready = threading.Event()
        box = {}

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                box["port"] = loop.run_until_complete(self.start())
            except Exception as e:  # reported to the caller
                box["error"] = e
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:  # connection handlers still waiting for bytes
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="gasguard-broker", daemon=True)
        self._thread.start()
        ready.wait(10)
        if "error" in box:
            raise box["error"]
        return box["port"]

    async def _shutdown(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for c in list(self.conns):
            c.clean_exit = True
            c.writer.close()

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            self._loop = None

    def publish(self, topic, payload, qos=0, retain=False):
        self.published += 1
        if retain:
            if payload:
                self.retained[topic] = (payload, qos)
            else:
                self.retained.pop(topic, None)
        for c in list(self.conns):
            best = -1
            for f, q in c.subs.items():
                if topic_matches(f, topic):
                    best = max(best, q)
            if best >= 0:
                c.deliver(topic, payload, min(qos, best), False)

    async def _handle(self, reader, writer):
        c = _Conn(self, reader, writer)
        try:
            first, body = await asyncio.wait_for(c.read_packet(), 10)
            if first >> 4 != 1:
                raise ProtocolError("first packet is not CONNECT")
            if not self._connect(c, body):
                return
            self.conns.add(c)
            while True:
                first, body = await c.read_packet()
                if not self._dispatch(c, first, body):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ProtocolError,
                OSError, struct.error, IndexError, UnicodeDecodeError) as e:
            # a malformed packet ends that client's connection (its will fires), nothing else
            self._log("connection %s ended: %r" % (c.client_id, e))
        finally:
            self.conns.discard(c)
            if self.by_id.get(c.client_id) is c:
                del self.by_id[c.client_id]
            if c.will is not None and not c.clean_exit:
                self.publish(*c.will)
            try:
                writer.close()
            except Exception:
                pass

    def _connect(self, c, body):
        pos = 0
        (n,) = struct.unpack_from("!H", body, pos)
        name = body[2 : 2 + n]
        pos = 2 + n
        level, flags = body[pos], body[pos + 1]
        (c.keepalive,) = struct.unpack_from("!H", body, pos + 2)
        pos += 4
        if name != b"MQTT" or level != 4:
            c.send(_packet(0x20, b"\x00\x01"))  # unacceptable protocol version
            return False

        def take():
            nonlocal pos
            (ln,) = struct.unpack_from("!H", body, pos)
            v = body[pos + 2 : pos + 2 + ln]
            pos += 2 + ln
            return v

        cid = take().decode()
        if flags & 0x04:
            wt = take().decode()
            wp = take()
            c.will = (wt, wp, (flags >> 3) & 3, bool(flags & 0x20))
        if flags & 0x80:
            take()
        if flags & 0x40:
            take()
        c.client_id = cid or "anon-%d" % id(c)
        old = self.by_id.get(c.client_id)
        if old is not None:  # session takeover: the old connection goes (its will fires)
            old.writer.close()
        self.by_id[c.client_id] = c
        c.send(_packet(0x20, b"\x00\x00"))
        return True

    def _dispatch(self, c, first, body):
        t = first >> 4
        if t == 3:
            qos = (first >> 1) & 3
            (n,) = struct.unpack_from("!H", body, 0)
            topic = body[2 : 2 + n].decode()
            pos = 2 + n
            if qos == 2:
                raise ProtocolError("QoS 2 not supported")
            if qos == 1:
                (pid,) = struct.unpack_from("!H", body, pos)
                pos += 2
                c.send(b"\x40\x02" + struct.pack("!H", pid))
            if "+" in topic or "#" in topic:
                raise ProtocolError("wildcard in PUBLISH topic")
            self.publish(topic, body[pos:], qos, bool(first & 1))
            return True
        if t == 8:  # SUBSCRIBE
            (pid,) = struct.unpack_from("!H", body, 0)
            pos = 2
            granted = bytearray()
            new = []
            while pos < len(body):
                (n,) = struct.unpack_from("!H", body, pos)
                f = body[pos + 2 : pos + 2 + n].decode()
                q = min(body[pos + 2 + n], 1)
                pos += 3 + n
                if valid_filter(f):
                    c.subs[f] = q
                    granted.append(q)
                    new.append((f, q))
                else:
                    granted.append(0x80)
            c.send(_packet(0x90, struct.pack("!H", pid) + bytes(granted)))
            for f, q in new:
                for topic, (payload, rq) in list(self.retained.items()):
                    if topic_matches(f, topic):
                        c.deliver(topic, payload, min(q, rq), True)
            return True
        if t == 10:  # UNSUBSCRIBE
            (pid,) = struct.unpack_from("!H", body, 0)
            pos = 2
            while pos < len(body):
                (n,) = struct.unpack_from("!H", body, pos)
                c.subs.pop(body[pos + 2 : pos + 2 + n].decode(), None)
                pos += 2 + n
            c.send(b"\xb0\x02" + struct.pack("!H", pid))
            return True
        if t == 12:  # PINGREQ
            c.send(b"\xd0\x00")
            return True
        if t == 14:  # DISCONNECT: no will
            c.clean_exit = True
            return False
        if t == 4:  # PUBACK from a subscriber: nothing kept to retransmit
            return True
        raise ProtocolError("unsupported packet type %d" % t)


def main(argv=None):
    p = argparse.ArgumentParser(description="gasguard embedded MQTT broker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)

    async def run():
        b = Broker(a.host, a.port, log=print if a.verbose else None)
        port = await b.start()
        print("gasguard broker listening on %s:%d" % (a.host, port), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
