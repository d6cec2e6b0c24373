"""systemd's notify protocol: one datagram per state change to $NOTIFY_SOCKET.

No libsystemd: the protocol is newline-separated VAR=value lines in one
datagram on an AF_UNIX socket; an address starting with '@' is in the abstract
namespace. Without NOTIFY_SOCKET (not started by systemd with Type=notify)
every call does nothing. A failed send is logged once and never stops the hub.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier"]

log = logging.getLogger("hub")


class Notifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1, RELOADING=1 and STOPPING=1."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None):
        self.address = address
        #: Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None.
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through the environment (or an inert one)."""
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        """Send VAR=value fields in one datagram."""
        if self.address is None:
            return
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), addr)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("Cannot notify systemd at %s: %s", self.address, exc.strerror or exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", "STATUS=Reloading the config")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=Stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
