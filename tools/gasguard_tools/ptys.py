"""Pseudo-terminals for virtual boards and lines: raw, non-blocking on our side, optionally
symlinked at a path the user chose (`--link ./ttyGG`). Used by cmd_sim and rs485_bus."""

import os
import pty
import tty


def open_raw(link=None):
    """A raw pty: (our master fd, the slave fd we keep open, the slave's path). With link,
    a symlink to the path replaces whatever was at link."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    if link:
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        os.symlink(path, link)
    return master, slave, path


def close(fds, link=None):
    """Close what open_raw gave (None entries are skipped) and remove the link."""
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    if link:
        try:
            os.unlink(link)
        except OSError:
            pass


def write_quietly(fd, data):
    """Write what fits; with nobody reading and the buffer full, the bytes are lost, as on a
    UART or a wire."""
    try:
        os.write(fd, data)
    except (BlockingIOError, OSError):
        pass
