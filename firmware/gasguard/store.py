"""A small file store with atomic replace, the persistence boundary of the firmware.

On the ESP32 the root is a folder on LittleFS, where rename over an existing file is
atomic, so a power cut during write() leaves either the old or the new content.
append() is not atomic: logs built on it frame every record (gasguard.record) and
readers drop a torn tail. The simulated board wraps this class to cut power at any byte.
"""

import os


class FileStore:
    def __init__(self, root):
        self.root = root.rstrip("/")
        try:
            os.mkdir(self.root)
        except OSError:
            pass  # already there

    def _path(self, name):
        if not name or "/" in name or name[0] == ".":
            raise ValueError("bad store name %r" % name)
        return self.root + "/" + name

    def read(self, name):
        """Whole content as bytes, or None when the file does not exist."""
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def read_at(self, name, pos, n):
        """n bytes from pos (fewer at the end; b"" when missing)."""
        try:
            with open(self._path(name), "rb") as f:
                f.seek(pos)
                return f.read(n)
        except OSError:
            return b""

    def write(self, name, data):
        """Replace the content of name atomically (temp file + rename)."""
        path = self._path(name)
        tmp = self.root + "/." + name + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
        os.rename(tmp, path)

    def append(self, name, data):
        with open(self._path(name), "ab") as f:
            f.write(data)
            f.flush()

    def rename(self, name, new):
        """Give name's content to new, replacing new atomically (LittleFS rename)."""
        os.rename(self._path(name), self._path(new))

    def size(self, name):
        try:
            return os.stat(self._path(name))[6]
        except OSError:
            return 0

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass

    def names(self):
        return sorted(n for n in os.listdir(self.root) if n[0] != ".")
