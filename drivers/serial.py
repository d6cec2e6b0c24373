"""The serial driver: real serial devices through pyserial (hub4com spec 3.1, 7.2).

Linux decisions, where hub4com's Windows behaviour cannot be copied:

* ``--octs`` maps to CRTSCTS, which covers both directions: output waits for
  CTS and the kernel drives RTS as the input handshake. hub4com's "RTS
  handshake until the first SET_PIN_STATE" becomes: with --octs=on a request
  for RTS is still applied, but the kernel may change RTS again when its input
  buffer fills or drains.
* DSR handshaking (``--odsr``) and DSR sensitivity (``--idsr``) do not exist;
  ``on`` warns once and is ignored.
* ``--ito`` is done in user space on the event loop, not with VMIN/VTIME.
* The device is opened exclusively twice over: pyserial's flock() (other
  programs that lock, and a second port of this hub) and TIOCEXCL (any other
  open by a non-root user). TIOCEXCL is cleared before the device is closed,
  so a share-mode close really frees it.
* Output still queued when the device is closed is discarded (tcflush) and
  counted as lost: otherwise the kernel's close can block the whole hub for
  up to 30 s while CTS is low.
* A device that goes away (USB unplug: EIO, ENXIO or EOF) is reopened with the
  same settings and pin state, with backoff; share mode retries a failed open
  too (hub4com waits for the next CONNECT).
* A pty stands in for a device in tests. A pty keeps the baud rate, stop bits
  and CRTSCTS, but forces 8 data bits and no parity, and has no modem lines
  (TIOCMGET/TIOCMBIS give ENOTTY): the driver then warns once and does not
  report modem lines.

Settings given as c[urrent] are read from the device when it is first opened
and kept from then on, as hub4com keeps the DCB it read: a device that comes
back after an unplug gets the same settings again.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import enum
import errno
import fcntl
import logging
import os
import struct
import termios
from dataclasses import dataclass
from typing import Any

import serial

from hub.caps import In, Out
from hub.errors import InUseError, UsageError
from hub.messages import (
    MODEM_MASK,
    Flow,
    FlowMode,
    LineControl,
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    Msr,
    Parity,
    Pin,
    PurgeTx,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    SetPins,
    StopBits,
)
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState, lc_fields, parse_write_limit

from ._fdio import FdStream
from ._inotify import IN_ATTRIB, IN_CREATE, IN_MOVED_TO, Watch, inotify_for
from ._usbid import UsbIdentity, is_identity

__all__ = ["DeviceSettings", "SerialDriver", "SerialPort", "SerialSettings"]

log = logging.getLogger(__name__)

USAGE = f"""\
Usage: serial [options]

Serial port driver (the default driver). A port argument is a device path such
as /dev/ttyUSB0 or /dev/serial/by-id/...; a bare name such as ttyS0 means
/dev/ttyS0. A USB device can also be named by what it is:
usb:<vendor>:<product>[,serial=<s>][,interface=<n>] (hex ids, serial number and
interface number as sysfs shows them, e.g. usb:0403:6001,serial=A10K1234); it
is found under whatever ttyUSBn or ttyACMn it has, also after an unplug. The
port is shown as the path's last part and its number, for example ttyUSB0(0).
The options apply to every serial port after them.

Options:
  --baud=<b>             Baud rate, a number or c[urrent]. Default 19200.
  --data=<d>             Data bits, 5 to 8, or c[urrent]. Default 8.
  --parity=<p>           Parity: n[o], o[dd], e[ven], m[ark], s[pace] or
                         c[urrent]; the first letter decides. Default no.
  --stop=<s>             Stop bits: 1, 1.5 (or 1,5), 2 or c[urrent]. Default 1.
  --octs=<c>             CTS handshaking: on, off or c[urrent]. Default on.
                         Linux has one flag (CRTSCTS) for both directions: with
                         it on, output waits for CTS and the kernel also drives
                         RTS as the input handshake.
  --odsr=<c>             DSR handshaking on output. Linux has none: on gives a
                         warning and is ignored. Default off.
  --ox=<c>               XON/XOFF on output (obey XOFF sent by the device): on,
                         off or c[urrent]. Default off.
  --ix=<c>               XON/XOFF on input (the kernel sends XOFF and XON to the
                         device): on, off or c[urrent]. Default off. When on, XON
                         and XOFF bytes are removed from data written to the port
                         and counted as lost.
  --idsr=<c>             DSR sensitivity. Linux has none: on gives a warning and
                         is ignored. Default off.
  --ito=<t>              Read interval timeout in ms: if above 0, data read is
                         held until no byte came for <t> ms or 64 KiB gathered.
                         Default 0 (deliver what is read at once).
  --write-limit=<s>      Write queue limit in bytes; 0 discards everything
                         written (a read-only port). Default {DEFAULT_WRITE_LIMIT}.
  --share-mode=<c>       on or off. On: open the device only while some port
                         asks for a connection (CONNECT), close it when the last
                         one goes, so other programs can use it meanwhile.
                         Default off.
  --restore=<c>          on or off. On: when the last connection ends (the port's
                         connection counter falls to 0), set the device back to
                         its configured baud rate, data format and flow control,
                         so the next client (an RFC 2217 session, a pty
                         application) does not inherit what the last one set.
                         Default on.
  --reopen-interval=<t>  Delay in ms before the first try to reopen a device that
                         went away or failed to open; it doubles with each
                         failure up to 10 times this (at most 30 s unless this is
                         longer). 0 = never reopen. Default 1000.
  --if-absent=<a>        A device that is not there at start: f[ail] (stop
                         with an error) or w[ait] (start without it and open
                         it when it appears). Default fail.
  --sysfs=<dir>          Where sysfs is mounted, for usb: names. Default /sys.
  --dev=<dir>            Where usb: names find device nodes. Default /dev.

Notes:
  A port whose CTS is low never transmits, because CTS handshaking is on by
  default. If a real port sends nothing, put --octs=off before it.
  Requested settings are checked before they reach the device: a baud rate
  outside 1..2147483647 or a data size outside 5..8 is refused, and whoever asked
  (an RFC 2217 client) is answered with the value the device keeps. Flow control
  requests (RFC 2217, through linectl --flow) set CRTSCTS, IXON and IXOFF; Linux
  has one flag for RTS/CTS in both directions.
  Modem lines (CTS, DSR, RI, DCD) are polled every 50 ms, and only when some
  filter or port uses them.
  A device that is not there (unplugged, or absent at start with the
  option --if-absent=wait) is waited for without polling: the port watches the
  directory its node appears in (inotify) and opens it at once, with the same
  settings; its status says absent meanwhile.
"""

#: The highest baud rate passed to a device (pyserial's custom-rate ioctl takes an int).
MAX_BAUD = 0x7FFFFFFF
#: How often modem lines are polled while somebody uses them.
MODEM_POLL_S = 0.05
#: With --ito, data is delivered at the latest when this much has gathered.
ITO_LIMIT = 64 * 1024
#: The reopen backoff stops growing at this many times --reopen-interval ...
REOPEN_BACKOFF_FACTOR = 10
#: ... and at this many seconds, unless --reopen-interval itself is longer.
REOPEN_MAX_S = 30.0

XON = 0x11
XOFF = 0x13
_XON_XOFF = bytes((XON, XOFF))

#: errno values of modem/pin ioctls that mean "this device has no modem lines" (ptys).
_NO_MODEM = (errno.EINVAL, errno.ENOTTY)
#: errno values of an open that mean the device is held by somebody else.
_BUSY = (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)

#: What can go wrong talking to a device: pyserial's SerialException is an
#: OSError; termios raises termios.error; pyserial raises ValueError for
#: settings the device or the platform refuses.
_DEVICE_ERRORS = (OSError, termios.error, ValueError)

# ---- termios constants not in Python's termios module -------------------------

_CMSPAR = getattr(serial.serialposix, "CMSPAR", 0o10000000000)
_BOTHER = getattr(serial.serialposix, "BOTHER", 0o010000)
_TCGETS2 = getattr(serial.serialposix, "TCGETS2", 0x802C542A)
_TIOCEXCL = getattr(termios, "TIOCEXCL", 0x540C)
_TIOCNXCL = getattr(termios, "TIOCNXCL", 0x540D)
_TIOCMGET = getattr(termios, "TIOCMGET", 0x5415)
_TIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)
_CRTSCTS = getattr(termios, "CRTSCTS", 0o20000000000)
#: Offset of c_ospeed in struct termios2 (4 flag words, c_line, c_cc[19], c_ispeed).
_TERMIOS2_OSPEED = 40

#: Output pin -> the pyserial attribute that drives it.
_PIN_ATTRS = {Pin.DTR: "dtr", Pin.RTS: "rts", Pin.BREAK: "break_condition"}

#: TIOCM bit -> MSR bit.
_TIOCM_TO_MSR = (
    (getattr(termios, "TIOCM_CTS", 0x020), Msr.CTS),
    (getattr(termios, "TIOCM_DSR", 0x100), Msr.DSR),
    (getattr(termios, "TIOCM_RI", 0x080), Msr.RI),
    (getattr(termios, "TIOCM_CD", 0x040), Msr.DCD),
)

#: Speed code (Bxxx) -> baud rate.
_SPEED_TO_BAUD = {code: baud for baud, code in serial.Serial.BAUDRATE_CONSTANTS.items()}
_CSIZE_TO_BITS = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}

#: Hub parity/stop numbering -> pyserial constants, and back.
_PARITY_TO_PYSERIAL = {
    Parity.NONE: serial.PARITY_NONE,
    Parity.ODD: serial.PARITY_ODD,
    Parity.EVEN: serial.PARITY_EVEN,
    Parity.MARK: serial.PARITY_MARK,
    Parity.SPACE: serial.PARITY_SPACE,
}
_PARITY_FROM_PYSERIAL = {v: k for k, v in _PARITY_TO_PYSERIAL.items()}
_STOP_TO_PYSERIAL = {
    StopBits.ONE: serial.STOPBITS_ONE,
    StopBits.ONE_POINT_FIVE: serial.STOPBITS_ONE_POINT_FIVE,
    StopBits.TWO: serial.STOPBITS_TWO,
}
_STOP_FROM_PYSERIAL = {v: k for k, v in _STOP_TO_PYSERIAL.items()}

# ---- option values ---------------------------------------------------------------

_PARITY_LETTERS = {"n": Parity.NONE, "o": Parity.ODD, "e": Parity.EVEN, "m": Parity.MARK, "s": Parity.SPACE}
_STOP_WORDS = {
    "1": StopBits.ONE,
    "1.5": StopBits.ONE_POINT_FIVE,
    "1,5": StopBits.ONE_POINT_FIVE,
    "2": StopBits.TWO,
}
_SWITCH_WORDS = {"on": True, "off": False}
_DATA_BITS = range(5, 9)


def _is_current(value: str) -> bool:
    """True for c, cu, ..., current: "keep the device's setting"."""
    return bool(value) and "current".startswith(value.lower())


def _parse_count(value: str) -> int | None:
    """A non-negative decimal number, or None."""
    return int(value) if value.isascii() and value.isdigit() else None


def _invalid(name: str) -> UsageError:
    return UsageError(None, f"Invalid {name} value")


def _convert(name: str, value: str) -> Any:
    """Convert one option value (the hub adds the argument and location to errors)."""
    v = value.strip()
    if name == "--baud":
        if _is_current(v):
            return None
        n = _parse_count(v)
        if not n:
            raise _invalid(name)
        return n
    if name == "--data":
        if _is_current(v):
            return None
        n = _parse_count(v)
        if n not in _DATA_BITS:
            raise _invalid(name)
        return n
    if name == "--parity":
        if v[:1].lower() == "c":
            return None
        if v[:1].lower() not in _PARITY_LETTERS:
            raise _invalid(name)
        return _PARITY_LETTERS[v[:1].lower()]
    if name == "--stop":
        if _is_current(v):
            return None
        if v not in _STOP_WORDS:
            raise _invalid(name)
        return _STOP_WORDS[v]
    if name in ("--octs", "--odsr", "--ox", "--ix", "--idsr"):
        if v.lower() in _SWITCH_WORDS:
            return _SWITCH_WORDS[v.lower()]
        if _is_current(v):
            return None
        raise _invalid(name)
    if name in ("--share-mode", "--restore"):
        if v.lower() not in _SWITCH_WORDS:
            raise _invalid(name)
        return _SWITCH_WORDS[v.lower()]
    if name == "--write-limit":
        return parse_write_limit(v)
    if name == "--if-absent":
        for word in ("fail", "wait"):
            if v and word.startswith(v.lower()):
                return word == "wait"
        raise UsageError(None, "Invalid --if-absent value (fail or wait)")
    if name in ("--sysfs", "--dev"):
        if not v:
            raise _invalid(name)
        return v
    if name in ("--ito", "--reopen-interval"):
        n = _parse_count(v)
        if n is None:
            raise _invalid(name)
        return n
    return value


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """The sticky options one serial port was created with.

    None in a device setting means c[urrent]: keep what the device has.
    """

    baud: int | None = 19200
    data_bits: int | None = 8
    parity: Parity | None = Parity.NONE
    stop_bits: StopBits | None = StopBits.ONE
    octs: bool | None = True
    ox: bool | None = False
    ix: bool | None = False
    ito_ms: int = 0
    share_mode: bool = False
    reopen_interval_ms: int = 1000
    restore: bool = True
    #: Start without a device that is not there (--if-absent=wait).
    wait_absent: bool = False
    sysfs: str = "/sys"
    dev: str = "/dev"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SerialSettings:
        return cls(
            baud=options["--baud"],
            data_bits=options["--data"],
            parity=options["--parity"],
            stop_bits=options["--stop"],
            octs=options["--octs"],
            ox=options["--ox"],
            ix=options["--ix"],
            ito_ms=options["--ito"],
            share_mode=options["--share-mode"],
            reopen_interval_ms=options["--reopen-interval"],
            restore=options.get("--restore", True),
            wait_absent=options.get("--if-absent", False),
            sysfs=options.get("--sysfs", "/sys"),
            dev=options.get("--dev", "/dev"),
        )


# ---- what the device actually uses ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """Settings read back from a device's termios."""

    baud: int | None
    data_bits: int
    parity: Parity
    stop_bits: StopBits
    rtscts: bool
    ixon: bool
    ixoff: bool

    @property
    def lc(self) -> LineControl:
        return LineControl(self.data_bits, self.parity, self.stop_bits)

    @property
    def flow(self) -> Flow:
        hw = FlowMode.HARDWARE
        return Flow(
            hw if self.rtscts else FlowMode.XON_XOFF if self.ixon else FlowMode.NONE,
            hw if self.rtscts else FlowMode.XON_XOFF if self.ixoff else FlowMode.NONE,
        )


def read_device_settings(fd: int) -> DeviceSettings:
    """Read the settings a tty fd uses now. Raises termios.error or OSError."""
    iflag, _oflag, cflag, _lflag, _ispeed, ospeed, _cc = termios.tcgetattr(fd)
    baud = _SPEED_TO_BAUD.get(ospeed)
    if ospeed == _BOTHER:
        buf = array.array("B", bytes(64))
        fcntl.ioctl(fd, _TCGETS2, buf)
        baud = struct.unpack_from("I", buf, _TERMIOS2_OSPEED)[0]
    data_bits = _CSIZE_TO_BITS[cflag & termios.CSIZE]
    if not cflag & termios.PARENB:
        parity = Parity.NONE
    elif cflag & _CMSPAR:
        parity = Parity.MARK if cflag & termios.PARODD else Parity.SPACE
    else:
        parity = Parity.ODD if cflag & termios.PARODD else Parity.EVEN
    if not cflag & termios.CSTOPB:
        stop = StopBits.ONE
    else:  # with 5 data bits a UART sends 1.5 stop bits for CSTOPB
        stop = StopBits.ONE_POINT_FIVE if data_bits == 5 else StopBits.TWO
    return DeviceSettings(
        baud=baud,
        data_bits=data_bits,
        parity=parity,
        stop_bits=stop,
        rtscts=bool(cflag & _CRTSCTS),
        ixon=bool(iflag & termios.IXON),
        ixoff=bool(iflag & termios.IXOFF),
    )


def read_modem_lines(fd: int) -> int:
    """The MSR bits (CTS, DSR, RI, DCD) of a tty fd. Raises OSError (ENOTTY on a pty)."""
    raw = fcntl.ioctl(fd, _TIOCMGET, struct.pack("I", 0))
    bits = struct.unpack("I", raw)[0]
    msr = 0
    for tiocm, msr_bit in _TIOCM_TO_MSR:
        if bits & tiocm:
            msr |= msr_bit
    return msr


def _display_name(path: str) -> str:
    """The last part of `path`; for a numbered device (/dev/pts/3), the last two."""
    parts = path.rstrip("/").split("/")
    if parts[-1].isdigit() and len(parts) > 1:
        return "/".join(parts[-2:])
    return parts[-1]


def _errno_of(exc: BaseException) -> int | None:
    if isinstance(exc, OSError):
        return exc.errno
    if isinstance(exc, termios.error) and exc.args and isinstance(exc.args[0], int):
        return int(exc.args[0])
    return None


def _open_error_text(exc: BaseException) -> str:
    """One line saying why a device could not be opened."""
    err = _errno_of(exc)
    if err in _BUSY:
        return "device is busy (another program holds it)"
    if err == errno.ENOENT:
        return "no such device"
    if err in (errno.EACCES, errno.EPERM):
        return "permission denied (is the user in the dialout group?)"
    if err == errno.ENOTTY:
        return "not a serial device"
    if err is not None:
        return f"cannot open the device: {os.strerror(err)}"
    return f"cannot set up the device: {exc}"


def _not_taken(fields: dict[str, Any], actual: LineControl) -> LineControl:
    """The fields of `actual` that pyserial settings `fields` asked for and did not get."""
    asked = LineControl(
        fields.get("bytesize"),
        _PARITY_FROM_PYSERIAL.get(fields["parity"]) if "parity" in fields else None,
        _STOP_FROM_PYSERIAL.get(fields["stopbits"]) if "stopbits" in fields else None,
    )
    return LineControl(
        actual.data_bits if asked.data_bits not in (None, actual.data_bits) else None,
        actual.parity if asked.parity not in (None, actual.parity) else None,
        actual.stop_bits if asked.stop_bits not in (None, actual.stop_bits) else None,
    )


class _HubSerial(serial.Serial):  # type: ignore[misc]
    """pyserial's Serial with what the hub needs on top.

    * Settings listed in `keep` are read from the device at the first open
      instead of being overwritten (pyserial applies every setting on open).
    * IXON and IXOFF are set separately (pyserial's xonxoff sets both).
    * `update()` changes several settings with one reconfiguration and rolls
      back if the device refuses.

    This relies on pyserial 3.5's serialposix internals (`_reconfigure_port`
    and the `_baudrate`-style attributes), which have been stable for years.
    """

    def __init__(self, path: str, settings: SerialSettings):
        super().__init__()
        self.port = path
        self.exclusive = True
        self._keep: dict[str, bool] = {}
        if settings.baud is None:
            self._keep["baudrate"] = True
        else:
            self.baudrate = settings.baud
        if settings.data_bits is None:
            self._keep["bytesize"] = True
        else:
            self.bytesize = settings.data_bits
        if settings.parity is None:
            self._keep["parity"] = True
        else:
            self.parity = _PARITY_TO_PYSERIAL[settings.parity]
        if settings.stop_bits is None:
            self._keep["stopbits"] = True
        else:
            self.stopbits = _STOP_TO_PYSERIAL[settings.stop_bits]
        if settings.octs is None:
            self._keep["rtscts"] = True
        else:
            self.rtscts = settings.octs
        #: IXON (--ox) and IXOFF (--ix); None until read from the device.
        self.ixon = settings.ox
        self.ixoff = settings.ix
        self.dtr = True
        self.rts = True

    def _reconfigure_port(self, force_update: bool = False) -> None:
        if not self.is_open:  # inside open(): pyserial's own error would lose the errno
            try:
                termios.tcgetattr(self.fd)
            except termios.error as exc:
                raise serial.SerialException(_errno_of(exc), "not a terminal device") from None
        if self._keep:
            current = read_device_settings(self.fd)
            if "baudrate" in self._keep and current.baud:
                self._baudrate = current.baud
            if "bytesize" in self._keep:
                self._bytesize = current.data_bits
            if "parity" in self._keep:
                self._parity = _PARITY_TO_PYSERIAL[current.parity]
            if "stopbits" in self._keep:
                self._stopbits = _STOP_TO_PYSERIAL[current.stop_bits]
            if "rtscts" in self._keep:
                self._rtscts = current.rtscts
            if self.ixon is None:
                self.ixon = current.ixon
            if self.ixoff is None:
                self.ixoff = current.ixoff
            self._keep.clear()
        # pyserial sets IXON and IXOFF together; pick its value to match the
        # common case and fix up the other only when they differ.
        self._xonxoff = bool(self.ixon and self.ixoff)
        try:
            super()._reconfigure_port(force_update)
        except termios.error as exc:
            # Linux refuses (EINVAL) a change of which the device can carry out
            # nothing, e.g. 7 data bits on a pty. The device keeps what it had;
            # the caller reads the settings back and warns about the difference.
            if _errno_of(exc) != errno.EINVAL:
                raise
            log.debug("%s: tcsetattr refused: %s", self.port, exc)
        if bool(self.ixon) != bool(self.ixoff):
            attrs = termios.tcgetattr(self.fd)
            iflag = attrs[0] & ~(termios.IXON | termios.IXOFF)
            attrs[0] = iflag | (termios.IXON if self.ixon else 0) | (termios.IXOFF if self.ixoff else 0)
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def update(self, **fields: Any) -> None:
        """Set pyserial settings (baudrate=, bytesize=, parity=, stopbits=, rtscts=,
        and the hub's ixon=, ixoff=) at once.

        Applied to the device if it is open. If the device refuses, the old
        values are restored and the error is raised again.
        """
        attrs = {name: name if name in ("ixon", "ixoff") else "_" + name for name in fields}
        old = {attr: getattr(self, attr) for attr in attrs.values()}
        for name, value in fields.items():
            setattr(self, attrs[name], value)
        if not self.is_open:
            return
        try:
            self._reconfigure_port()
        except Exception:  # any refusal, also pyserial's own (OverflowError ...): roll back
            for attr, value in old.items():
                setattr(self, attr, value)
            try:
                self._reconfigure_port()
            except Exception as exc:
                log.debug("%s: restoring the settings failed too: %s", self.port, exc)
            raise

    def snapshot(self) -> dict[str, Any]:
        """The settings as `update` takes them (what the device is asked to use)."""
        return {
            "baudrate": self._baudrate,
            "bytesize": self._bytesize,
            "parity": self._parity,
            "stopbits": self._stopbits,
            "rtscts": self._rtscts,
            "ixon": bool(self.ixon),
            "ixoff": bool(self.ixoff),
        }

    @property
    def requested_lc(self) -> LineControl:
        return LineControl(
            self._bytesize, _PARITY_FROM_PYSERIAL[self._parity], _STOP_FROM_PYSERIAL[self._stopbits]
        )


# ---- the port ----------------------------------------------------------------------


class _State(enum.Enum):
    """Life cycle of a serial port. Transitions happen only in start,
    on_connect_request, _device_lost, _schedule_reopen, _try_open, _open_failed
    and close."""

    #: Created, start() not called yet.
    NEW = "new"
    #: Started, device closed: share mode with nobody connected, or no reopening.
    IDLE = "idle"
    #: The device is open and read.
    OPEN = "open"
    #: The device went away or failed to open; a reopen timer is armed.
    RETRY = "waiting to reopen"
    #: The device is not there; the port waits for it to appear.
    ABSENT = "absent"
    #: close() ran; nothing happens any more.
    CLOSED = "closed"


class SerialPort(Port):
    """One serial device."""

    #: The stream's high-water mark pauses the port (FdStream's on_write_paused).
    reports_high_water = True

    provides = In.LBR | In.LLC | In.LFLOW | In.RBR | In.RLC | In.MODEM
    accepts = Out.DTR | Out.RTS | Out.BREAK | Out.SET_BR | Out.SET_LC | Out.SET_FLOW | Out.PURGE_TX

    def __init__(self, hub: HubLink, index: int, path: str, settings: SerialSettings, write_limit: int):
        super().__init__(hub, index, f"{_display_name(path)}({index})", write_limit)
        self.path = path
        self.settings = settings
        #: The USB identity the port names (None: a device path).
        self.identity = UsbIdentity.parse(path) if is_identity(path) else None
        #: Directory watches while the device is absent.
        self._watches: list[Watch] = []
        self._ser = _HubSerial(path, settings)
        self._state = _State.NEW
        self._stream: FdStream | None = None
        #: Output pins as last requested (DTR, RTS, BREAK), and which were requested at all.
        self._pins = int(Pin.DTR | Pin.RTS)
        self._pins_set = 0
        #: What the device took, as last read back (None while closed).
        self._actual: DeviceSettings | None = None
        #: MSR bits somebody uses; the last value reported; False once the device
        #: showed it has no modem lines.
        self._modem_mask = 0
        self._msr: int | None = None
        self._modem_ok = True
        self._poll_timer: asyncio.TimerHandle | None = None
        self._reopen_timer: asyncio.TimerHandle | None = None
        self._retry_delay_s = settings.reopen_interval_ms / 1000
        self._last_error = ""
        self._ito_chunks: list[bytes] = []
        self._ito_size = 0
        self._ito_last = 0.0
        self._ito_timer: asyncio.TimerHandle | None = None
        self._warned: set[str] = set()
        #: The settings the device was first opened with (--restore goes back to them).
        self._configured: dict[str, Any] | None = None

    def __repr__(self) -> str:
        fd = f" fd={self._ser.fd}" if self._state is _State.OPEN else ""
        read = "paused" if self.xoff_count else "on"
        return f"<SerialPort {self.name} {self._state.value}{fd} read={read} write={self.queued_bytes()}B>"

    def status(self) -> str:
        if self._state is _State.OPEN and self._actual is not None:
            where = f"{self._ser.port} " if self._ser.port != self.path else ""
            return f"open {where}at {self._actual.baud} {self._actual.lc}"
        if self._state is _State.ABSENT:
            return f"absent (waiting for {self.path})"
        return self._state.value

    def port_state(self) -> PortState:
        st = self._state
        if st is _State.OPEN:
            return PortState.CONNECTED
        if st is _State.RETRY:
            return PortState.ABSENT if self._last_error else PortState.REOPENING
        if st is _State.CLOSED:
            return PortState.CLOSED
        if st is _State.IDLE and not self.settings.share_mode:
            return PortState.DOWN  # lost and not reopened (--reopen-interval=0)
        return PortState.WAITING

    def problem(self) -> str | None:
        st = self._state
        if st is _State.RETRY:
            why = f"cannot open: {self._last_error}" if self._last_error else "lost, reopening"
            return f"device {self.path} {why}"
        if st is _State.ABSENT:
            return f"device {self.path} absent (waiting for it)"
        if st is _State.IDLE and not self.settings.share_mode:
            return f"device {self.path} lost (not reopened: --reopen-interval=0)"
        return None

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["device"] = self.path
        actual = self._actual
        if actual is not None:
            snap["line"] = {
                "baud": actual.baud,
                **lc_fields(actual.lc),
                "rtscts": actual.rtscts,
                "xon_xoff_out": actual.ixon,
                "xon_xoff_in": actual.ixoff,
            }
        return snap

    # ---- driver hooks -------------------------------------------------------------

    def start(self) -> None:
        """Open the device (in share mode: open to check it, then close it).

        Raises UsageError(path, text) if the device cannot be opened.
        """
        self._modem_mask = int(self.wanted) & MODEM_MASK
        try:
            self._open_device()
        except _DEVICE_ERRORS as exc:
            if not self.settings.wait_absent:
                error = InUseError if _errno_of(exc) in _BUSY else UsageError
                raise error(self.path, _open_error_text(exc)) from None
            self._state = _State.RETRY
            self._open_failed(_open_error_text(exc), _errno_of(exc))
            return
        if self.wanted & (In.RBR | In.RLC):
            log.warning(
                "%s: a serial port cannot know the remote side's settings; "
                "the remote baud rate and line control are supposed equal to the local ones",
                self.name,
            )
        if self.settings.share_mode:
            log.info("%s checked %s; share mode: opened while connected", self.name, self.path)
            self._close_device()
            self._state = _State.IDLE
            if self.connection_counter > 0:
                self._try_open()
            return
        log.info("%s opened %s at %s", self.name, self.path, self._describe())
        self._state = _State.OPEN
        self._report_up()

    def _report_up(self) -> None:
        """CONNECT(TRUE) and the statuses, then modem polling."""
        statuses = self._statuses()
        if self._state is _State.OPEN:  # reading modem lines can find the device gone
            self.set_connected(True, statuses)
            self._start_polling()

    def close(self) -> None:
        self._cancel_reopen()
        if self._state is _State.OPEN:
            self._close_device(deliver=False)
        self._state = _State.CLOSED

    def send_data(self, data: bytes) -> None:
        stream = self._stream
        if stream is None:
            self.lose(len(data), Drop.NOT_CONNECTED)
            return
        if self._ser.ixoff:
            kept = data.translate(None, _XON_XOFF)
            if len(kept) != len(data):
                self.lose(len(data) - len(kept), Drop.DISCARDED)
                data = kept
                if not data:
                    return
        stream.write(data)

    def queued_bytes(self) -> int:
        return self._stream.queued if self._stream is not None else 0

    def pause_reading(self) -> None:
        if self._stream is not None:
            self._stream.pause_reading()

    def resume_reading(self) -> None:
        if self._stream is not None:
            self._stream.resume_reading()

    def on_connect_request(self, up: bool) -> None:
        if not up and self.settings.restore:
            self._restore()
        if not self.settings.share_mode or self._state in (_State.NEW, _State.CLOSED):
            return  # start() looks at the counter itself
        if up:
            if self._state is _State.IDLE:
                self._retry_delay_s = self.settings.reopen_interval_ms / 1000
                self._try_open()
            return
        self._cancel_reopen()
        if self._state is _State.OPEN:
            self._close_device()
            self.set_connected(False)
        self._state = _State.IDLE

    def write_signal(self, msg: Message) -> None:
        match msg:
            case SetPins(value=value, mask=mask):
                self._set_pins(value, mask)
            case SetBaud(baud=baud):
                self._set_baud(baud)
            case SetLineControl(lc=lc):
                self._set_line_control(lc)
            case SetFlow(flow=flow):
                self._set_flow(flow)
            case PurgeTx():
                self._purge_tx()
            case _:
                pass  # not a signal this driver acts on

    # ---- opening and closing --------------------------------------------------------

    def _open_device(self) -> None:
        """Open the device with the stored settings and pin state and start reading.

        Raises OSError (pyserial's SerialException), termios.error or ValueError;
        nothing stays open then.
        """
        ser = self._ser
        ser.port = self._resolve()
        ser.dtr = bool(self._pins & Pin.DTR)  # pyserial applies these on open
        ser.rts = bool(self._pins & Pin.RTS)
        ser.open()
        try:
            fd = ser.fd
            os.set_blocking(fd, False)
            fcntl.ioctl(fd, _TIOCEXCL)
            if ser.rtscts and self._pins_set & Pin.RTS:  # pyserial leaves RTS alone under CRTSCTS
                self._apply_pin(Pin.RTS, bool(self._pins & Pin.RTS))
            if self._pins & Pin.BREAK:
                self._apply_pin(Pin.BREAK, True)
            actual = read_device_settings(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                fcntl.ioctl(ser.fd, _TIOCNXCL)
            ser.close()
            raise
        self._actual = actual
        if self._configured is None:
            self._configured = ser.snapshot()  # c[urrent] settings are known from here on
        self._warn_not_taken(actual)
        self._msr = None
        stream = FdStream(
            self.hub.loop,
            fd,
            self._on_data if self.settings.ito_ms else self.emit_data,  # (a call less per chunk)
            lambda exc: self._on_stream_error(stream, exc),
            self.set_write_paused,
            high=self.high_water,
            low=self.low_water,
        )
        self._stream = stream
        if not self.xoff_count:
            stream.resume_reading()

    def _resolve(self) -> str:
        """The device node to open now. Raises OSError(ENOENT) if a USB identity is not found."""
        if self.identity is None:
            return self.path
        nodes = self.identity.find(self.settings.sysfs, self.settings.dev)
        if not nodes:
            raise OSError(errno.ENOENT, "no such device")
        if len(nodes) > 1:
            self._warn_once(
                f"ambiguous-{nodes}",
                f"%s: {len(nodes)} devices match {self.identity} ({', '.join(nodes)}); "
                "using the first (add serial= or interface=)",
            )
        return nodes[0]

    def _wait_for_device(self) -> bool:
        """Watch the directories the device's node appears in; False if that is impossible."""
        self._close_watches()
        inotify = inotify_for(self.hub.loop)
        if inotify is None:
            return False
        if self.identity is not None:
            dirs = [self.settings.dev, os.path.join(self.settings.sysfs, "class", "tty")]
        else:
            d = os.path.dirname(os.path.abspath(self.path))
            while not os.path.isdir(d) and d != os.path.dirname(d):
                d = os.path.dirname(d)  # /dev/serial/by-id appears with the first device
            dirs = [d]
        for d in dirs:
            try:
                self._watches.append(
                    inotify.watch(d, IN_CREATE | IN_MOVED_TO | IN_ATTRIB, self._on_dir_event)
                )
            except OSError as exc:
                log.debug("%s: cannot watch %s: %s", self.name, d, exc)
        return bool(self._watches)

    def _on_dir_event(self, mask: int, name: str) -> None:
        if self._state is _State.ABSENT:
            self._close_watches()
            self._try_open()

    def _close_watches(self) -> None:
        for w in self._watches:
            w.close()
        self._watches.clear()

    def _close_device(self, deliver: bool = True) -> None:
        """Stop reading, deliver held (--ito) data, drop queued output (counted as
        lost), close. Never raises."""
        if deliver:
            self._flush_ito()
        else:
            self._drop_ito()
        self._stop_polling()
        ser = self._ser
        stream, self._stream = self._stream, None
        lost = stream.stop() if stream is not None else 0
        if ser.is_open:
            try:
                lost += struct.unpack("I", fcntl.ioctl(ser.fd, _TIOCOUTQ, struct.pack("I", 0)))[0]
                termios.tcflush(ser.fd, termios.TCOFLUSH)
                fcntl.ioctl(ser.fd, _TIOCNXCL)
            except _DEVICE_ERRORS as exc:  # a device that went away refuses these
                log.debug("%s: before close: %s", self.name, exc)
            try:
                ser.close()
            except OSError as exc:
                log.debug("%s: close: %s", self.name, exc)
        if lost:
            self.lose(lost, Drop.UNSENT)
        self._actual = None

    def _on_stream_error(self, stream: FdStream, exc: OSError | None) -> None:
        if stream is not self._stream:
            return
        self.lose(stream.dropped, Drop.UNSENT)
        self._stream = None  # stopped already; _close_device must not count it twice
        self._device_lost(exc)

    def _device_lost(self, exc: BaseException | None) -> None:
        """The device failed or went away: close it, report, and reopen later."""
        if self._state is not _State.OPEN:
            return
        if exc is None:
            reason = "end of file (hung up)"
        else:
            err = _errno_of(exc)
            reason = os.strerror(err) if err is not None else str(exc)
        log.warning("%s error: %s: device lost (%s)", self.name, self.path, reason)
        self._close_device()
        self.set_connected(False)
        self._last_error = ""
        self._retry_delay_s = self.settings.reopen_interval_ms / 1000
        self._schedule_reopen()

    def _schedule_reopen(self) -> None:
        if self.settings.reopen_interval_ms == 0:
            log.warning("%s: not reopening (--reopen-interval=0)", self.name)
            self._state = _State.IDLE
            return
        if self.settings.share_mode and self.connection_counter == 0:
            self._state = _State.IDLE
            return
        self._state = _State.RETRY
        self._reopen_timer = self.hub.loop.call_later(self._retry_delay_s, self._on_reopen_timer)
        interval = self.settings.reopen_interval_ms / 1000
        cap = max(interval, min(REOPEN_BACKOFF_FACTOR * interval, REOPEN_MAX_S))
        self._retry_delay_s = min(self._retry_delay_s * 2, cap)

    def _cancel_reopen(self) -> None:
        self._close_watches()
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
            self._reopen_timer = None

    def _on_reopen_timer(self) -> None:
        self._reopen_timer = None
        if self._state is _State.RETRY:
            self._try_open()

    def _try_open(self) -> None:
        """Open the device now (share-mode connect, or a reopen); on failure retry later."""
        reopen = self._state in (_State.RETRY, _State.ABSENT)
        try:
            self._open_device()
        except _DEVICE_ERRORS as exc:
            self._open_failed(_open_error_text(exc), _errno_of(exc))
            return
        except Exception:
            # A bug, not a device problem: report it with its traceback, keep retrying.
            log.exception("%s: unexpected error opening %s", self.name, self.path)
            self._open_failed("unexpected error")
            return
        self._state = _State.OPEN
        self._last_error = ""
        self._retry_delay_s = self.settings.reopen_interval_ms / 1000
        if reopen:
            self.reopens += 1
        log.info("%s %s %s at %s", self.name, "reopened" if reopen else "opened", self.path, self._describe())
        self._report_up()

    def _open_failed(self, text: str, err: int | None = None) -> None:
        absent = err == errno.ENOENT and self.settings.reopen_interval_ms != 0
        if absent and not (self.settings.share_mode and self.connection_counter == 0):
            if self._wait_for_device():
                if self._state is not _State.ABSENT:
                    log.warning("%s: %s is absent; waiting for it to appear", self.name, self.path)
                self._state = _State.ABSENT
                self._last_error = text
                return
        if text != self._last_error:
            log.warning("%s error: cannot open %s: %s; retrying", self.name, self.path, text)
            self._last_error = text
        else:
            log.debug("%s: still cannot open %s: %s", self.name, self.path, text)
        self._schedule_reopen()

    # ---- reading ------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if not self.settings.ito_ms:
            self.emit_data(data)
            return
        self._ito_chunks.append(data)
        self._ito_size += len(data)
        if self._ito_size >= ITO_LIMIT:
            self._flush_ito()
            return
        self._ito_last = self.hub.loop.time()
        if self._ito_timer is None:
            self._ito_timer = self.hub.loop.call_later(self.settings.ito_ms / 1000, self._on_ito_timer)

    def _on_ito_timer(self) -> None:
        # One timer per gap, not per chunk: when data came meanwhile, wait the rest.
        self._ito_timer = None
        wait = self._ito_last + self.settings.ito_ms / 1000 - self.hub.loop.time()
        if wait > 0 and self._ito_chunks:
            self._ito_timer = self.hub.loop.call_later(wait, self._on_ito_timer)
            return
        self._flush_ito()

    def _drop_ito(self) -> None:
        if self._ito_timer is not None:
            self._ito_timer.cancel()
            self._ito_timer = None
        self._ito_chunks.clear()
        self._ito_size = 0

    def _flush_ito(self) -> None:
        if self._ito_timer is not None:
            self._ito_timer.cancel()
            self._ito_timer = None
        if self._ito_chunks:
            data = b"".join(self._ito_chunks)
            self._ito_chunks.clear()
            self._ito_size = 0
            self.emit_data(data)

    # ---- statuses and modem lines ----------------------------------------------------

    def _statuses(self) -> list[Message]:
        """The statuses reported after CONNECT(TRUE), as far as somebody uses them."""
        out: list[Message] = []
        actual = self._actual
        if actual is None:
            return out
        if actual.baud and self.wanted & In.LBR:
            out.append(LocalBaudStatus(actual.baud))
        if self.wanted & In.LLC:
            out.append(LocalLcStatus(actual.lc))
        if actual.baud and self.wanted & In.RBR:
            out.append(RemoteBaudStatus(actual.baud))
        if self.wanted & In.RLC:
            out.append(RemoteLcStatus(actual.lc))
        if self.wanted & In.LFLOW:
            out.append(LocalFlowStatus(actual.flow))
        if self._modem_mask:
            msr = self._read_msr()
            if msr is not None:
                self._msr = msr
                out.append(ModemStatus(msr, self._modem_mask))
        return out

    def _read_msr(self) -> int | None:
        """The used MSR bits, or None (no modem lines, or the device went away)."""
        if not self._modem_ok or self._stream is None:
            return None
        try:
            return read_modem_lines(self._ser.fd) & self._modem_mask
        except OSError as exc:
            if exc.errno in _NO_MODEM:
                self._modem_ok = False
                self._warn_once(
                    "modem", "%s: the device has no modem lines; CTS, DSR, RI and DCD are not reported"
                )
                return None
            self._device_lost(exc)
            return None

    def _start_polling(self) -> None:
        if self._modem_mask and self._modem_ok and self._poll_timer is None:
            self._poll_timer = self.hub.loop.call_later(MODEM_POLL_S, self._poll_modem)

    def _stop_polling(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None

    def _poll_modem(self) -> None:
        self._poll_timer = None
        msr = self._read_msr()
        if msr is None:
            return
        if msr != self._msr:
            self._msr = msr
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s modem lines %s", self.name, Msr(msr))
            self.emit([ModemStatus(msr, self._modem_mask)])
        self._start_polling()

    # ---- output signals --------------------------------------------------------------

    def _set_pins(self, value: int, mask: int) -> None:
        mask &= Pin.DTR | Pin.RTS | Pin.BREAK
        self._pins = (self._pins & ~mask) | (value & mask)
        self._pins_set |= mask
        ser = self._ser
        if self._state is not _State.OPEN:
            ser.dtr = bool(self._pins & Pin.DTR)  # stored; applied at the next open
            ser.rts = bool(self._pins & Pin.RTS)
            return
        for pin in _PIN_ATTRS:
            if mask & pin and self._state is _State.OPEN:  # an earlier pin may have found it gone
                self._apply_pin(pin, bool(value & pin))

    def _apply_pin(self, pin: Pin, on: bool) -> None:
        """Drive one output pin of the open device through pyserial."""
        try:
            setattr(self._ser, _PIN_ATTRS[pin], on)
        except OSError as exc:
            if exc.errno in _NO_MODEM:
                self._warn_once(f"pin-{pin.name}", f"%s: the device cannot drive {pin.name}; ignored")
            elif self._state is _State.OPEN:
                self._device_lost(exc)
            else:
                raise

    def _set_baud(self, baud: int) -> None:
        if not 0 < baud <= MAX_BAUD:
            log.warning("%s: invalid baud rate %d requested; kept the current one", self.name, baud)
            self._report_refused({"baudrate": baud})
            return
        self._change_settings({"baudrate": baud}, f"baud rate {baud}")

    def _set_line_control(self, lc: LineControl) -> None:
        fields: dict[str, Any] = {}
        if lc.data_bits is not None:
            if lc.data_bits not in _DATA_BITS:
                bits = lc.data_bits
                log.warning("%s: invalid data bits %d requested; kept the current ones", self.name, bits)
                self._report_refused({"bytesize": lc.data_bits})
                return
            fields["bytesize"] = lc.data_bits
        if lc.parity is not None:
            fields["parity"] = _PARITY_TO_PYSERIAL[Parity(lc.parity)]
        if lc.stop_bits is not None:
            fields["stopbits"] = _STOP_TO_PYSERIAL[StopBits(lc.stop_bits)]
        if fields:
            self._change_settings(fields, f"line control {lc}")

    def _set_flow(self, flow: Flow) -> None:
        """RTS/CTS (one flag for both directions on Linux), IXON (outbound XON/XOFF)
        and IXOFF (inbound). Any other mode asked for switches RTS/CTS off."""
        ser = self._ser
        fields: dict[str, Any] = {}
        modes = [m for m in (flow.outbound, flow.inbound) if m is not None]
        if not modes:
            return
        if flow.outbound is not None:
            fields["ixon"] = flow.outbound is FlowMode.XON_XOFF
        if flow.inbound is not None:
            fields["ixoff"] = flow.inbound is FlowMode.XON_XOFF
        fields["rtscts"] = FlowMode.HARDWARE in modes
        if fields["rtscts"] and ser.rtscts and len(modes) == 1:
            fields.pop("rtscts")  # one direction asked for RTS/CTS and has it
        self._change_settings(fields, f"flow control {flow}")

    def _restore(self) -> None:
        """Back to the configured settings (--restore), if a client changed them."""
        configured = self._configured
        if configured is None:
            return
        changed = {k: v for k, v in configured.items() if self._ser.snapshot()[k] != v}
        if not changed:
            return
        log.info("%s: the last connection ended; back to the configured settings", self.name)
        self._change_settings(changed, "the configured settings")

    def _report_refused(self, fields: dict[str, Any]) -> None:
        """A request that never reached the device: report what it keeps, so that
        whoever asked (an RFC 2217 server answering its client) gets an answer."""
        actual = self._actual
        if actual is None:
            return
        out: list[Message] = []
        if "baudrate" in fields and actual.baud:
            if self.wanted & In.LBR:
                out.append(LocalBaudStatus(actual.baud))
            if self.wanted & In.RBR:
                out.append(RemoteBaudStatus(actual.baud))
        if "bytesize" in fields:
            lc = LineControl(data_bits=actual.data_bits)
            if self.wanted & In.LLC:
                out.append(LocalLcStatus(lc))
            if self.wanted & In.RLC:
                out.append(RemoteLcStatus(lc))
        if out:
            self.emit(out)

    def _change_settings(self, fields: dict[str, Any], what: str) -> None:
        """Apply settings; read back what the device took; report changes.

        A requested setting the device did not take is reported too, with the
        value the device uses, even if that did not change: whoever asked (an
        RFC 2217 server answering its client) gets an answer either way.
        """
        try:
            self._ser.update(**fields)
        except Exception as exc:  # the device (or pyserial) refused: the old settings stay
            if self._state is _State.OPEN and _errno_of(exc) in (errno.EIO, errno.ENXIO, errno.ENODEV):
                self._device_lost(exc)
                return
            log.warning("%s: cannot set %s: %s", self.name, what, exc)
        old = self._actual
        if self._state is not _State.OPEN or old is None:
            return  # stored; applied at the next open
        try:
            new = read_device_settings(self._ser.fd)
        except _DEVICE_ERRORS as exc:
            self._device_lost(exc)
            return
        self._actual = new
        self._warn_not_taken(new)
        out: list[Message] = []
        asked_baud = fields.get("baudrate")
        if new.baud and (new.baud != old.baud or (asked_baud is not None and asked_baud != new.baud)):
            if self.wanted & In.LBR:
                out.append(LocalBaudStatus(new.baud))
            if self.wanted & In.RBR:
                out.append(RemoteBaudStatus(new.baud))
        changed = old.lc.changed_fields(new.lc).merged(_not_taken(fields, new.lc))
        if not changed.empty:
            if self.wanted & In.LLC:
                out.append(LocalLcStatus(changed))
            if self.wanted & In.RLC:
                out.append(RemoteLcStatus(changed))
        asked_flow = {"rtscts", "ixon", "ixoff"} & fields.keys()
        if (asked_flow or new.flow != old.flow) and self.wanted & In.LFLOW:
            out.append(LocalFlowStatus(new.flow))  # always answered when asked, as the baud rate
        if out:
            self.emit(out)

    def _purge_tx(self) -> None:
        if self._stream is None:
            return
        self._stream.discard_output()
        try:
            self._ser.reset_output_buffer()
        except _DEVICE_ERRORS as exc:
            self._device_lost(exc)

    # ---- helpers ------------------------------------------------------------------

    def _describe(self) -> str:
        actual = self._actual
        if actual is None:
            return "?"
        flow = [name for name, on in (("CTS", actual.rtscts), ("XON/XOFF out", actual.ixon)) if on]
        if actual.ixoff:
            flow.append("XON/XOFF in")
        return f"{actual.baud} {actual.lc}" + (f" ({', '.join(flow)} flow control)" if flow else "")

    def _warn_not_taken(self, actual: DeviceSettings) -> None:
        """Warn (once per value) about requested settings the device did not take."""
        ser = self._ser
        wanted_lc = ser.requested_lc
        for what, asked, got in (
            ("baud rate", ser.baudrate, actual.baud),
            ("data bits", wanted_lc.data_bits, actual.data_bits),
            ("parity", wanted_lc.parity, actual.parity),
            ("stop bits", wanted_lc.stop_bits, actual.stop_bits),
        ):
            if got is not None and asked != got:
                asked_s = asked.name.lower() if isinstance(asked, enum.Enum) else asked
                got_s = got.name.lower() if isinstance(got, enum.Enum) else got
                self._warn_once(
                    f"{what}={asked}->{got}",
                    f"%s: the device did not take {what} {asked_s}; it uses {got_s}",
                )

    def _warn_once(self, key: str, fmt: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(fmt, self.name)


class SerialDriver(Driver):
    """The serial driver module (hub4com's "Serial port driver")."""

    NAME = "serial"
    DESCRIPTION = "Serial port driver"
    USAGE = USAGE
    DEFAULTS = {
        "--baud": 19200,
        "--data": 8,
        "--parity": Parity.NONE,
        "--stop": StopBits.ONE,
        "--octs": True,
        "--odsr": False,
        "--ox": False,
        "--ix": False,
        "--idsr": False,
        "--ito": 0,
        "--write-limit": DEFAULT_WRITE_LIMIT,
        "--share-mode": False,
        "--restore": True,
        "--reopen-interval": 1000,
        "--if-absent": False,
        "--sysfs": "/sys",
        "--dev": "/dev",
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._warned: set[str] = set()

    def convert_option(self, name: str, value: Any) -> Any:
        """Validate one option value; return it typed (None for c[urrent]).

        Raises UsageError(None, "Invalid <option> value")."""
        return _convert(name, str(value))

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> SerialPort:
        """Create the port for device `path` (opened later, by start()).

        Raises UsageError(path, ...) for an empty path or a missing device."""
        if not path:
            raise UsageError(path, "Empty serial port path")
        settings = SerialSettings.from_options(options)
        if is_identity(path):
            try:
                ident = UsbIdentity.parse(path)
            except ValueError as exc:
                raise UsageError(path, str(exc)) from None
            if not settings.wait_absent and not ident.find(settings.sysfs, settings.dev):
                raise UsageError(path, "no such device (no tty with this USB identity in sysfs)")
        else:
            if "/" not in path:
                path = "/dev/" + path
            if not os.path.exists(path) and not settings.wait_absent:
                # hub4com opens the port while parsing; a missing device fails just as early.
                raise UsageError(path, "no such device")
        for name, what in (("--odsr", "DSR handshaking"), ("--idsr", "DSR sensitivity")):
            if options.get(name) and name not in self._warned:
                self._warned.add(name)
                log.warning("%s=on ignored: Linux serial ports have no %s", name, what)
        return SerialPort(self.hub, index, path, settings, options["--write-limit"])
