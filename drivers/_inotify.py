"""inotify through ctypes: kernel events instead of polling, one fd per event loop.

Used by the pty driver (an application opening or closing a pty's slave gives
IN_OPEN / IN_CLOSE on /dev/pts/N) and by the serial driver (a device node or
by-id link appearing in a directory). One inotify instance serves every port of
a loop, because the kernel allows only 128 instances per user by default but
many thousands of watches. Watches on one inode share a watch descriptor, so
each keeps a list of callbacks.

Callbacks get the event mask and the file name (for directory watches) and
must re-check the real state: events are hints (our own opens cause them too).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from collections.abc import Callable

__all__ = [
    "IN_ATTRIB",
    "IN_CLOSE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_OPEN",
    "Inotify",
    "Watch",
    "inotify_for",
]

log = logging.getLogger(__name__)

IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_CLOSE_NOWRITE = 0x010
IN_CLOSE = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE
IN_OPEN = 0x020
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
_IN_MASK_ADD = 0x20000000
_EVENT = struct.Struct("iIII")

Callback = Callable[[int, str], None]

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


class Watch:
    """One callback on one path; `close()` removes it."""

    def __init__(self, owner: Inotify, wd: int, callback: Callback):
        self._owner = owner
        self.wd = wd
        self.callback = callback

    def close(self) -> None:
        if self.wd >= 0:
            self._owner._remove(self)
            self.wd = -1


class Inotify:
    """An inotify instance read on an event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        fd = _lib().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self._watches: dict[int, list[Watch]] = {}
        self._masks: dict[int, int] = {}
        #: Called on a queue overflow: every watcher must re-check.
        self.overflowed = False
        loop.add_reader(fd, self._read)

    def watch(self, path: str, mask: int, callback: Callback) -> Watch:
        """Call `callback(mask, name)` on events of `mask` on `path`. Raises OSError."""
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(path), mask | _IN_MASK_ADD)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        w = Watch(self, wd, callback)
        self._watches.setdefault(wd, []).append(w)
        self._masks[wd] = self._masks.get(wd, 0) | mask
        return w

    def _remove(self, w: Watch) -> None:
        lst = self._watches.get(w.wd)
        if lst is None:
            return
        if w in lst:
            lst.remove(w)
        if not lst:
            del self._watches[w.wd]
            self._masks.pop(w.wd, None)
            if _lib().inotify_rm_watch(self.fd, w.wd) < 0 and ctypes.get_errno() != errno.EINVAL:
                log.debug("inotify_rm_watch(%d) failed", w.wd)
        if not self._watches:
            self.close()  # made again when next needed; nothing stays open between runs

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            log.error("inotify read failed: %s", exc)
            return
        off = 0
        while off + _EVENT.size <= len(data):
            wd, mask, _cookie, size = _EVENT.unpack_from(data, off)
            name = data[off + _EVENT.size : off + _EVENT.size + size].rstrip(b"\0").decode(errors="replace")
            off += _EVENT.size + size
            if mask & IN_Q_OVERFLOW:
                for lst in list(self._watches.values()):
                    for w in list(lst):
                        self._call(w, mask, "")
                continue
            if mask & IN_IGNORED:
                self._watches.pop(wd, None)  # the inode is gone
                continue
            for w in list(self._watches.get(wd, ())):
                self._call(w, mask, name)

    @staticmethod
    def _call(w: Watch, mask: int, name: str) -> None:
        try:
            w.callback(mask, name)
        except Exception:
            log.exception("error in an inotify callback %r", w.callback)

    def close(self) -> None:
        if self.fd >= 0:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if _instances.get(id(self.loop)) is self:
            del _instances[id(self.loop)]


_instances: dict[int, Inotify] = {}


def inotify_for(loop: asyncio.AbstractEventLoop) -> Inotify | None:
    """The shared inotify of `loop`, or None where inotify is unavailable."""
    for key, old in list(_instances.items()):
        if old.loop.is_closed():  # its loop is gone: free the fd
            del _instances[key]
            if old.fd >= 0:
                os.close(old.fd)
                old.fd = -1
    inst = _instances.get(id(loop))
    if inst is None or inst.fd < 0 or inst.loop is not loop:
        try:
            inst = Inotify(loop)
        except (OSError, AttributeError) as exc:
            log.debug("inotify is unavailable: %s", exc)
            return None
        _instances[id(loop)] = inst
    return inst
