"""Console: print the notification (for `gasguard notify --print` and the sim story)."""

import sys
import threading

_lock = threading.Lock()


class Channel:
    def __init__(self, name, settings):
        self.name = name
        self.out = settings.get("_console_out") or sys.stdout

    def send(self, endpoint, message):
        with _lock:
            self.out.write("\n=== notify -> %s (%s) ===\n%s\n" % (message["recipient"],
                                                                 message["kind"], message["text"]))
            self.out.flush()
