"""Who owns a pty link: a lock file beside it, held by the hub that made the link.

A pty port's link (/tmp/gps1) gets a lock file beside it (/tmp/gps1.lock)
that the hub holds with flock(2) while it runs, the hub's pid written in it.

* Start-up: a lock another live hub holds is refused with one line naming
  its pid, before anything is touched. A lock nobody holds (its hub was
  killed, kill -9) is taken over, and the link that hub left is replaced.
  With no lock file, an existing symlink is replaced only if it points at a
  pty slave (/dev/pts/...: an earlier run's leftover); a symlink anywhere
  else is the user's and is refused.
* The kernel releases an flock when its holder dies, so a stale lock never
  needs cleaning up, and no pid is ever guessed from a file.
* Exit: the link is removed only if it still points at our pty; then the
  lock file is removed while still locked, and the lock released.
* Taking over a symlink that is not a hub's (--replace-link, e.g. a
  /dev/serial/by-id/ entry): its target is written to the lock file, after
  the pid, before the link is replaced; at exit the link is pointed back at
  it (if it still points at our pty). A hub killed meanwhile leaves the lock
  file: the next hub on that link carries the recorded target over and
  restores it when it stops.
* A link in a directory any user may write to, without the sticky bit
  (/tmp has it), can be swapped by another user while the hub runs: warned
  about at start-up. The lock file is opened with O_NOFOLLOW, so a planted
  symlink cannot make the hub write elsewhere.

Sans the pty itself: `drivers.pty` calls this module around its link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat

from hub.errors import InUseError, UsageError

__all__ = ["LOCK_SUFFIX", "LinkLock", "directory_warning", "replace_symlink"]

#: The lock file is the link's path with this suffix.
LOCK_SUFFIX = ".lock"
#: Where pty slaves live; a symlink into it was made by a hub (or is stale).
_PTS_PREFIX = "/dev/pts/"
#: Attempts to lock the file at the path (it may be removed between open and flock).
_ATTEMPTS = 5


def directory_warning(link: str) -> str | None:
    """A warning if `link`'s directory is world-writable without the sticky bit."""
    directory = os.path.dirname(link) or "."
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return None
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        return (
            f"{directory} is writable by every user and has no sticky bit: another user can replace "
            f"the link {link} while the hub runs (use a directory only you can write, or one like /tmp)"
        )
    return None


class LinkLock:
    """The lock file of one link (see the module docstring)."""

    def __init__(self, link: str):
        self.link = link
        self.path = link + LOCK_SUFFIX
        self._fd = -1
        #: The lock file was there (a hub made the link and was killed).
        self.stale = False
        #: The target of the symlink the link replaced (--replace-link), to restore at exit.
        self.original: str | None = None

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self) -> None:
        """Take the lock and write our pid. Raises UsageError naming the holder or the problem."""
        for _ in range(_ATTEMPTS):
            existed = os.path.lexists(self.path)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UsageError(self.link, f"The lock file {self.path} is a symlink") from None
                why = f"Cannot create the lock file {self.path}: {exc.strerror}"
                raise UsageError(self.link, why) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise UsageError(self.link, f"Cannot lock {self.path}: {exc.strerror}") from None
                who = f"pid {holder}" if holder else "another process"
                raise InUseError(self.link, f"The pty link is in use by another hub ({who})") from None
            if _same_file(fd, self.path):
                self._fd = fd
                self.stale = existed
                if existed:
                    self.original = _read_original(fd)  # a killed hub's takeover: carried over
                self._write()
                return
            os.close(fd)  # removed by its last holder between our open and flock: again
        raise UsageError(self.link, f"Cannot lock {self.path}: it keeps changing")

    def keep_original(self, target: str) -> None:
        """Record the target of the symlink we are about to replace (in the lock file
        first, so that a hub killed meanwhile leaves it behind). Raises UsageError."""
        if "\n" in target:
            raise UsageError(self.link, "The symlink's target contains a line break; not taking it over")
        self.original = target
        try:
            self._write()
        except OSError as exc:
            raise UsageError(self.link, f"Cannot write the lock file {self.path}: {exc.strerror}") from None

    def _write(self) -> None:
        text = f"{os.getpid()}\n" + (f"{self.original}\n" if self.original is not None else "")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, os.fsencode(text), 0)

    def may_replace(self) -> bool:
        """May a symlink already at the link be replaced? (A hub made it.)"""
        if self.stale:
            return True
        try:
            target = os.readlink(self.link)
        except OSError:
            return True
        return target.startswith(_PTS_PREFIX)

    def release(self) -> None:
        """Remove the lock file and release the lock. Never raises."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        with contextlib.suppress(OSError):
            if _same_file(fd, self.path):
                os.unlink(self.path)
        os.close(fd)


def replace_symlink(target: str, link: str) -> None:
    """Point `link` at `target` atomically (a new symlink renamed over it). Raises OSError."""
    tmp = f"{link}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_original(fd: int) -> str | None:
    """The symlink target a killed hub recorded after its pid, or None."""
    try:
        lines = os.pread(fd, 8192, 0).split(b"\n")
    except OSError:
        return None
    return os.fsdecode(lines[1]) if len(lines) > 2 and lines[1] else None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).split(b"\n", 1)[0].decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: str) -> bool:
    """`fd` is the file now at `path` (not one removed meanwhile)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
