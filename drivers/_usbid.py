"""Serial devices named by what they are rather than where the kernel put them.

A port argument ``usb:<vendor>:<product>[,serial=<s>][,interface=<n>]`` names a
USB serial device by the identity sysfs shows: ``idVendor`` and ``idProduct``
(hex) and ``serial`` of the USB device, ``bInterfaceNumber`` of the interface
(for adapters with several ports). It is found under whatever ttyUSBn or
ttyACMn it has now by walking ``<sysfs>/class/tty/*/device`` up to its USB
interface and device. The sysfs and /dev roots are parameters, so tests use a
fake tree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["UsbIdentity", "is_identity"]

_RE = re.compile(r"usb:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})((?:,[a-z]+=[^,]*)*)\Z")


def is_identity(path: str) -> bool:
    return path.lower().startswith("usb:")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class UsbIdentity:
    vendor: str
    product: str
    serial: str | None = None
    interface: int | None = None

    @classmethod
    def parse(cls, text: str) -> UsbIdentity:
        """Parse ``usb:VVVV:PPPP[,serial=S][,interface=N]``. Raises ValueError."""
        m = _RE.match(text.strip())
        if not m:
            raise ValueError("expected usb:<vendor>:<product>[,serial=<s>][,interface=<n>] (hex ids)")
        serial: str | None = None
        interface: int | None = None
        for item in filter(None, m.group(3).split(",")):
            key, _, value = item.partition("=")
            if key == "serial" and value:
                serial = value
            elif key == "interface" and value.isdigit():
                interface = int(value)
            else:
                raise ValueError(f"unknown or empty {key!r} in a USB identity (serial= or interface=)")
        return cls(m.group(1).lower(), m.group(2).lower(), serial, interface)

    def __str__(self) -> str:
        text = f"usb:{self.vendor}:{self.product}"
        if self.serial is not None:
            text += f",serial={self.serial}"
        if self.interface is not None:
            text += f",interface={self.interface}"
        return text

    def find(self, sysfs: str = "/sys", dev: str = "/dev") -> list[str]:
        """The device nodes (under `dev`) of every tty that matches, sorted."""
        base = os.path.join(sysfs, "class", "tty")
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return []
        root = os.path.realpath(sysfs)
        found = []
        for name in names:
            link = os.path.join(base, name, "device")
            if not os.path.exists(link):
                continue  # not a device-backed tty (console, pty)
            if self._matches(os.path.realpath(link), root):
                found.append(os.path.join(dev, name))
        return found

    def _matches(self, path: str, root: str) -> bool:
        interface: int | None = None
        while path.startswith(root) and len(path) > len(root):
            if interface is None:
                number = _read(os.path.join(path, "bInterfaceNumber"))
                if number is not None:
                    try:
                        interface = int(number, 16)
                    except ValueError:
                        return False
            vendor = _read(os.path.join(path, "idVendor"))
            if vendor is not None:
                if vendor.lower() != self.vendor:
                    return False
                if (_read(os.path.join(path, "idProduct")) or "").lower() != self.product:
                    return False
                if self.serial is not None and _read(os.path.join(path, "serial")) != self.serial:
                    return False
                return self.interface is None or self.interface == interface
            path = os.path.dirname(path)
        return False
