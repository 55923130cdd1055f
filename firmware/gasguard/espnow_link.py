"""The wireless interlock link over ESP-NOW: pairing, counters, freshness, retries.

Two ends share one protocol core (gasguard.link_core.LinkCore):
  DetectorLink  on the detector: an interlock sink (close(cause), poll(), fault, state)
                that sends CLOSE until the valve acknowledges it, plus heartbeats.
  ValveLink     on the valve controller: accepts HEARTBEAT and CLOSE, answers with ACK
                and STATUS, supervises the link (link_lost) for the controller.

Replay protection without writing every received counter to flash:
  * every sender's counter strictly increases per key and survives reboots: it is
    reserved in blocks of `counter_block` (one flash write per block, and one per boot);
  * every frame carries `echo`, the highest authentic counter its sender has seen
    from us. After a boot (or a new pairing) we accept a peer frame only once its echo
    is >= the first counter we used in this boot (the "floor"): it must have been made
    after it heard us, so it is not a recording. From then on a frame is fresh only
    if its counter is above the last one accepted. A peer reboot needs nothing: its
    counter jumps to a new block, which is still above.
Frames are never trusted by MAC; the MAC check only saves an HMAC on foreign traffic.

Radio: send(mac, data) -> bool, poll() -> (mac, data) or None. Nothing here blocks.

Resident on a device: link_core, detector_link or valve_link, hmac256. Loaded only when
needed and released again (docs/heap-budget.md): interlock_keys (construction, key
provisioning), link_cfg (the config check), link_pair (pairing), interlock_frame (the
reference codec; pairing frames).
This module is the host's one place to import the link from; devices import the ends.
"""

from gasguard.interlock_keys import (  # noqa: F401  (the link's public API, in one place)
    LINK_DEFAULTS,
    link_config,
    load_pairing,
    provision,
)
from gasguard.link_core import REJECT_REASONS, FrameCounter  # noqa: F401
from gasguard.detector_link import DetectorLink  # noqa: F401
from gasguard.valve_link import ValveLink  # noqa: F401

BROADCAST = b"\xff\xff\xff\xff\xff\xff"
