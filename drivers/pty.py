"""The pty driver: a pseudo-terminal as a virtual serial port (com0com's part on Linux).

A port argument is a path such as /tmp/gps1. The port creates a pty, puts its
slave side in raw mode and makes the path a symlink to the slave (/dev/pts/N);
applications open the path as if it were a serial port. The hub holds a lock
file beside the link (/tmp/gps1.lock, `drivers._ptylink`): a link another
running hub holds is refused at start-up, naming that hub's pid; a link left
by a hub that was killed is replaced, and so is a symlink to a pty slave left
by an earlier run; any other file there is refused. The link is removed when
the port closes, if it still points at our pty. With --replace-link a symlink
no hub made (a /dev/serial/by-id/ entry) is taken over instead: its target is
recorded in the lock file and the link points back at it when the port closes.

How it works on Linux
---------------------

The hub holds only the pty master; it never keeps the slave open, because then
the master could not see applications come and go. While no application has
the slave open, the master reports POLLHUP and reads fail with EIO: the port
stops reading and waits for the kernel to say that somebody opened the slave
(inotify IN_OPEN on /dev/pts/N; IN_CLOSE while reading is paused), so an idle
pty costs nothing. Each event is only a hint (the port's own opens cause them
too): the port then looks at the master, and the hang-up having ended means an
application opened the link. Where inotify is unavailable the port polls the
master every 50 ms instead. An application opening the link ends the hang-up:
the port reports CONNECT(TRUE) with CTS, DSR and DCD on; when the last
application closes it, CONNECT(FALSE) with the three lines off. An application
that opens, writes and closes before the port looks (``echo hi > link``) is
noticed by the data it left: connect, data, disconnect.

Data written to the port while no application has it open is dropped and
counted as unheard (status lines), not as lost; with --buffer the port keeps
up to that much of it for the next application (whole lines with line
framing), as a tcp-multi port does for its first client. The application
that holds the link is the port's one session in the sense of the tcp-multi
listener (`drivers._sessions`): its
queue (--write-limit), line framing (--frame) and what happens when the queue
is full (--slow-client) follow the same rules. The port writes to the master
only what the kernel takes (it holds 16 to 20 KiB the application has not
read); the rest waits in the session's queue, so with line framing a full
queue drops whole lines, never the tail of a line that is half written.

When an application closes, whatever it left unread (in the kernel's pty
buffers and in the port's queue) is read out through a short-lived slave fd
and counted as lost too, so the next application never gets a stale backlog.
The same fd clears exclusive mode (TIOCEXCL, set by Qt and Java serial
libraries, among others): on a pty it outlives the application's close and
would lock out every later opener that is not root. Without root privileges the
port cannot open the slave then; it moves the link to a new pty instead.

The master sees the slave's termios (tcgetattr on the master fd). Only the baud
rate (standard rates, and custom rates through TCGETS2) and the stop bits are
real: the kernel forces every pty to 8 data bits without parity. An
application asking for 6 or 7 data bits or for even parity gets EINVAL from
glibc's tcsetattr (pyserial raises); 5 data bits and odd, mark or space parity
are accepted but do not take. So the port reports baud rate and stop bits,
never data bits or parity. It watches them only while something consumes remote baud rate or line
control: the master then runs in packet mode (TIOCPKT) and the slave has EXTPROC
set, so each termios change the application makes wakes the master with
TIOCPKT_IOCTL; the port reads the settings and reports what changed, and again
in full at each connect. EXTPROC has a cost: the slave's line discipline stops
processing input, so canonical (line) mode, echo, CR/NL mapping, signal
characters and XON/XOFF do not work for the application. Raw-mode serial
programs, the usual kind, see no difference. SET_BR and SET_LC written to the
port set the slave's termios, so an application reading its settings back sees
them (like com0com's EmuBR; again only baud rate and stop bits take); the
port does not report its own changes back.

A pty has no modem lines: applications can neither read CTS/DSR/DCD nor drive
DTR/RTS (TIOCMGET and TIOCMSET fail with ENOTTY), so the open state stands in
for all of them. Line errors and break do not exist on a pty.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import platform
import re
import select
import struct
import sys
import termios
from dataclasses import dataclass
from typing import Any

from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    Flow,
    FlowMode,
    LineControl,
    LocalFlowStatus,
    Message,
    ModemStatus,
    Msr,
    Parity,
    PurgeTx,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    StopBits,
)
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState, lc_fields, parse_write_limit

from ._fdio import READ_SIZE, FdStream
from ._inotify import IN_CLOSE, IN_OPEN, Watch, inotify_for
from ._ptylink import LinkLock, directory_warning, replace_symlink
from ._sessions import (
    Chunk,
    Frame,
    Session,
    SessionConfig,
    SessionSet,
    SlowClient,
    describe_drops,
    format_bytes,
    parse_buffer,
    parse_frame,
)

__all__ = ["USAGE", "LineSettings", "PtyDriver", "PtyPort", "read_line_settings", "update_termios"]

log = logging.getLogger(__name__)

USAGE = f"""\
Usage: pty [options]

Pseudo-terminal driver: a virtual serial port for local applications, the part
com0com pairs play on Windows. A port argument is the path of a symlink the hub
creates to a new pty, such as /tmp/gps1; applications open that path as a serial
port. The port is shown as the path's last part and its number, for example
gps1(2). The hub locks <path>.lock while it runs: a link another running hub
holds is refused (naming its pid); one left by a killed hub, or a symlink to a
pty from an earlier run, is replaced; any other file is refused (a symlink
can be taken over with --replace-link). The link is
removed when the hub stops, if it still points at the hub's pty. The options apply to every pty port
after them. Like all driver options they reach every driver: the options of
the same names given for tcp-multi ports (or for mqtt ports: --frame) apply to
the pty ports after them too.

Options:
  --write-limit=<s>  Write queue limit in bytes; 0 discards everything written
                     (applications can only send). Default {DEFAULT_WRITE_LIMIT}.
  --frame=<f>        b[ytes] or l[ine]. line: an application that opens the
                     path starts at the next line start, and one whose queue
                     is full loses whole lines, never part of one (lines end
                     with LF: NMEA's CR LF and plain LF alike). Default bytes.
  --slow-client=<m>  An application that does not read and whose queue is
                     full: block (lossless: the port throttles its sources
                     along flow-control routes; from a source without such a
                     route data is dropped as with drop) or drop (the
                     application loses data, counted, in whole lines with
                     line framing; nobody is throttled). Default block.
                     The tcp-multi value disconnect (sticky options reach
                     every driver) means drop here, with a warning: the hub
                     cannot close an application's end of a pty.
  --replace-link     The following ports may take over a symlink that no hub
                     made, such as a /dev/serial/by-id/ entry, so that
                     applications configured for a device open the hub's
                     port instead: the link points at the pty while the hub
                     runs and back at its old target when the hub stops
                     (SIGTERM and SIGINT too; after kill -9 the next hub on
                     the path restores it, and the lock file names it).
                     Never a regular file or a device node.
  --no-replace-link  Undo --replace-link for the following ports (the default).
  --buffer=<bytes>   Keep up to <bytes> of the data written while no
                     application has the path open, and give it to the next
                     application that opens it (with --frame=line whole lines
                     only); what does not fit is unheard. Default 0: off, so
                     an application never gets data meant for an earlier one.

Notes:
  An application opening the path is a connection (CONNECT, with CTS, DSR and
  DCD on); the last one closing it ends the connection. Data written while no
  application has the port open is dropped (unless --buffer keeps it),
  counted as unheard in status lines (not in "Write lost"), and a reopening
  application never gets data meant for an earlier one.
  Drops for a slow application are in the "Write lost" lines; the status
  line counts them (in lines with --frame=line).
  The baud rate and stop bits an application sets are reported as the remote
  settings when some filter uses them. Data bits and parity cannot be seen: a
  Linux pty is always 8 data bits without parity.
"""

#: Without inotify: how often the master is polled for an application opening
#: the slave (and, while reading is paused, for it closing the slave).
POLL_INTERVAL_S = 0.05

#: The modem lines that follow the application's open state.
_LINES = Msr.CTS | Msr.DSR | Msr.DCD

#: At most this many reads drain what a departed application left unread
#: (the kernel holds under 32 KiB per pty; the bound only guards the loop).
_DRAIN_READS = 64

# ---- Linux constants and layouts Python's termios module lacks -----------------

_MACHINE = platform.machine()
#: Machines with the asm-generic ioctl numbers and struct termios2 layout.
_GENERIC_ABI = _MACHINE in {"x86_64", "i386", "i486", "i586", "i686", "aarch64", "riscv64", "s390x"} or (
    _MACHINE.startswith("arm")
)
#: c_lflag bit that makes the line discipline leave input processing to the
#: other side and, with the master in packet mode, report termios changes.
_EXTPROC: int = getattr(termios, "EXTPROC", 0x10000000 if _MACHINE.startswith(("ppc", "alpha")) else 0o200000)
#: Packet-mode status bits (first byte of each read from the master).
_TIOCPKT_DATA = getattr(termios, "TIOCPKT_DATA", 0)
_TIOCPKT_IOCTL = getattr(termios, "TIOCPKT_IOCTL", 0x40)
#: Custom baud rates: c_cflag speed code and the termios2 ioctls.
_BOTHER = 0o010000
_CIBAUD: int = getattr(termios, "CIBAUD", termios.CBAUD << 16)
_TCGETS2 = 0x802C542A
_TCSETS2 = 0x402C542B
#: struct termios2: c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[19], c_ispeed, c_ospeed.
_TERMIOS2: struct.Struct | None = struct.Struct("=4IB19s2I") if _GENERIC_ABI else None

#: termios speed codes (B9600, ...) and the baud rates they stand for; B0 is "hang up".
_BAUD_OF: dict[int, int] = {
    getattr(termios, name): int(name[1:]) for name in dir(termios) if re.fullmatch(r"B[1-9][0-9]*", name)
}
_SPEED_OF: dict[int, int] = {baud: code for code, baud in _BAUD_OF.items()}


# ---- termios helpers -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineSettings:
    """What a pty really keeps of the line settings an application makes."""

    #: Baud rate; None for B0 or a custom rate this machine cannot read.
    baud: int | None
    stop_bits: StopBits


def read_line_settings(fd: int) -> tuple[LineSettings, int]:
    """Read the baud rate and stop bits of tty `fd` (a pty master reads its slave's).

    Returns the settings and c_lflag. Raises OSError or termios.error.
    """
    if _TERMIOS2 is not None:
        fields = _TERMIOS2.unpack(fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size)))
        cflag, lflag, baud = fields[2], fields[3], fields[7]
    else:
        attrs = termios.tcgetattr(fd)
        cflag, lflag, baud = attrs[2], attrs[3], _BAUD_OF.get(attrs[5], 0)
    stop = StopBits.TWO if cflag & termios.CSTOPB else StopBits.ONE
    return LineSettings(baud or None, stop), lflag


def update_termios(
    fd: int, *, baud: int | None = None, stop_bits: StopBits | None = None, lflag_on: int = 0
) -> None:
    """Change the given settings of tty `fd`; a pty master changes its slave's.

    A rate without a speed code (B...) is set as a custom rate (BOTHER).
    1.5 stop bits are set as CSTOPB, as Linux serial drivers do.
    Raises OSError (EINVAL for a custom rate this machine cannot set) or termios.error.
    """
    if _TERMIOS2 is not None:
        fields = list(_TERMIOS2.unpack(fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2.size))))
        cflag = fields[2]
        if baud is not None:
            cflag = (cflag & ~(termios.CBAUD | _CIBAUD)) | _SPEED_OF.get(baud, _BOTHER)
            fields[6] = fields[7] = baud
        if stop_bits is not None:
            cflag = cflag & ~termios.CSTOPB if stop_bits == StopBits.ONE else cflag | termios.CSTOPB
        fields[2] = cflag
        fields[3] |= lflag_on
        fcntl.ioctl(fd, _TCSETS2, _TERMIOS2.pack(*fields))
        return
    attrs = termios.tcgetattr(fd)
    if baud is not None:
        if baud not in _SPEED_OF:
            raise OSError(errno.EINVAL, f"{baud} baud cannot be set on this machine")
        attrs[4] = attrs[5] = _SPEED_OF[baud]
    if stop_bits is not None:
        attrs[2] = attrs[2] & ~termios.CSTOPB if stop_bits == StopBits.ONE else attrs[2] | termios.CSTOPB
    attrs[3] |= lflag_on
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _make_raw(attrs: list[Any]) -> None:
    """cfmakeraw() on a termios.tcgetattr list, plus CREAD and CLOCAL."""
    attrs[0] &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    attrs[1] &= ~termios.OPOST
    attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8 | termios.CREAD | termios.CLOCAL
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0


def _check_link(path: str) -> str:
    """Return the absolute link path for port argument `path`. Raises UsageError."""
    if not path:
        raise UsageError(path, "Empty pty link path")
    link = os.path.abspath(path)
    if not os.path.isdir(os.path.dirname(link)):
        raise UsageError(path, "The directory of the pty link does not exist")
    if os.path.lexists(link) and not os.path.islink(link):
        raise UsageError(path, "The pty link path exists and is not a symlink")
    return link


# ---- the port --------------------------------------------------------------------


class PtyPort(Port):
    """One pty: the hub holds the master, applications open the slave through a link."""

    provides = In.CTS | In.DSR | In.DCD | In.RBR | In.RLC | In.LFLOW
    accepts = Out.SET_BR | Out.SET_LC | Out.SET_FLOW | Out.PURGE_TX

    def __init__(
        self,
        hub: HubLink,
        index: int,
        link: str,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        *,
        frame: Frame = Frame.BYTES,
        slow: SlowClient = SlowClient.BLOCK,
        buffer: int = 0,
        replace_link: bool = False,
    ):
        super().__init__(hub, index, f"{os.path.basename(link)}({index})", write_limit)
        if slow is SlowClient.DISCONNECT:
            raise ValueError("a pty's application cannot be disconnected")
        #: Absolute path of the symlink applications open.
        self.link = link
        #: The slave device the link points to (/dev/pts/N); "" before start.
        self.slave_path = ""
        self._fd = -1
        self._poller: select.poll | None = None
        #: The inotify watch on the slave (None: polling instead).
        self._watch: Watch | None = None
        self._stream: FdStream | None = None
        self._timer: Any = None
        #: Packet mode and EXTPROC are on: somebody wants remote baud rate or line control.
        self._packet = False
        #: MSR bits reported with connects and disconnects.
        self._msr = 0
        #: The line settings last seen (reported, or set by the port itself).
        self._line: LineSettings | None = None
        #: The application closed the slave while reading was paused; input not read yet.
        self._gone = False
        self._warned: set[str] = set()
        #: The application's queue, framing and drops: a pty is a port with one session.
        self.sessions = SessionSet(
            SessionConfig(slow=slow, frame=frame, limit=write_limit, send_timeout_s=0.0, buffer=buffer)
        )
        #: The application holding the link now (None: nobody, or it left while reading was paused).
        self._session: Session | None = None
        self._block = slow is SlowClient.BLOCK
        self._opens = 0
        #: Logged at start (so that a start-up error stays one line).
        self.warnings: list[str] = []
        #: The lock beside the link, held from start to close.
        self._lock = LinkLock(link)
        #: --replace-link: a symlink no hub made may be taken over while the hub runs.
        self.replace_link = replace_link

    def __repr__(self) -> str:
        state = "connected" if self.connected else "idle"
        read = "paused" if self.xoff_count else "on"
        return (
            f"<PtyPort {self.name} {self.slave_path or '-'} fd={self._fd} {state} "
            f"read={read} queued={self.queued_bytes()}B>"
        )

    def status(self) -> str:
        if self._fd < 0:
            return "closed"
        state = "application connected" if self.connected else "waiting for an application"
        text = f"{state} ({self.link} -> {self.slave_path})"
        s = self.sessions
        if s.stalled:
            text += f", not reading ({format_bytes(self.queued_bytes())} queued)"
        if s.dropped_bytes:
            text += f", dropped {describe_drops(s.dropped_bytes, s.dropped_lines)}"
        return text

    def port_state(self) -> PortState:
        if self._fd < 0:
            return PortState.CLOSED
        return PortState.CONNECTED if self.connected else PortState.WAITING

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["link"] = self.link
        snap["device"] = self.slave_path
        line = self._line
        if line is not None:
            snap["line"] = {"baud": line.baud, **lc_fields(LineControl(stop_bits=line.stop_bits))}
        session = self._session
        if session is not None:
            snap["peers"] = ["application"]
            snap["sessions"] = [session.snapshot(self.hub.loop.time())]
        return snap

    # ---- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Create the pty and the link. Raises UsageError if either cannot be made."""
        if self._fd >= 0:
            return
        self._packet = bool(self.wanted & (In.RBR | In.RLC))
        self._msr = self.wanted.msr & _LINES
        _check_link(self.link)
        self._lock.acquire()  # before anything is touched: another hub's link stays as it is
        try:
            self._claim_link()
            self._open_pty()
        except (OSError, termios.error) as exc:
            self._lock.release()
            raise UsageError(self.link, f"Cannot create a pty: {_strerror(exc)}") from None
        except UsageError:
            self._lock.release()
            raise
        try:
            self._make_link()
        except OSError as exc:
            self._close_pty()
            self._lock.release()
            raise UsageError(self.link, f"Cannot create the pty link: {exc.strerror}") from None
        except UsageError:
            self._close_pty()
            self._lock.release()
            raise
        self._line = self._read_line()
        log.info("%s: %s is a link to %s", self.name, self.link, self.slave_path)
        exposed = directory_warning(self.link)
        for text in [*self.warnings, *([exposed] if exposed else [])]:
            log.warning("Warning: %s", text)
        self._schedule_poll()

    def close(self) -> None:
        """Remove the link (if it is still ours) and close the pty. Never raises."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stream is not None:
            self.lose(self._stream.stop(), Drop.UNSENT)
            self._stream = None
        self.lose(self._end_session("the hub stopped with an application on"), Drop.UNSENT)
        self._remove_link()
        self._close_pty()
        self._lock.release()
        log.debug("%s: closed", self.name)

    def _open_pty(self, keep: LineSettings | None = None) -> None:
        """Open a new pty pair as self._fd / self.slave_path; close the slave.

        `keep`: line settings to carry over from a pty being replaced.
        Raises OSError or termios.error, having closed what it opened.
        """
        master, slave = os.openpty()
        try:
            slave_path = os.ttyname(slave)
            attrs = termios.tcgetattr(slave)
            _make_raw(attrs)
            if self._packet:
                attrs[3] |= _EXTPROC
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            if keep is not None:
                update_termios(master, baud=keep.baud, stop_bits=keep.stop_bits)
            if self._packet:
                fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
            os.set_blocking(master, False)
        except BaseException:
            os.close(master)
            raise
        finally:
            # From now on only applications hold the slave: the master sees them leave.
            os.close(slave)
        poller = select.poll()
        poller.register(master, select.POLLIN)
        self._fd, self.slave_path, self._poller = master, slave_path, poller
        self._watch_slave()

    def _watch_slave(self) -> None:
        """Ask the kernel to tell us when the slave is opened or closed."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        inotify = inotify_for(self.hub.loop)
        if inotify is None:
            return
        try:
            self._watch = inotify.watch(self.slave_path, IN_OPEN | IN_CLOSE, self._on_slave_event)
        except OSError as exc:
            log.debug("%s: no inotify on %s (%s); polling instead", self.name, self.slave_path, exc)

    def _on_slave_event(self, mask: int, name: str) -> None:
        if self._poller is not None:
            self._poll()

    def _close_pty(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError as exc:
                log.debug("%s: closing the pty master: %s", self.name, exc)
            self._fd = -1
            self._poller = None

    def _claim_link(self) -> None:
        """Refuse a symlink at the link that no hub made, unless --replace-link takes it
        over (its target is recorded first). With the lock held. Raises UsageError."""
        if self._lock.original is not None:
            log.info("%s: a killed hub had replaced %s; restoring it at exit", self.name, self.link)
            return
        if not os.path.islink(self.link) or self._lock.may_replace():
            return
        target = os.readlink(self.link)
        if not self.replace_link:
            raise UsageError(
                self.link,
                f"The pty link path is a symlink to {target} that no hub made; remove it, choose "
                "another path, or give --replace-link to take it over while the hub runs",
            )
        self._lock.keep_original(target)
        log.info("%s: taking over %s (a link to %s) while the hub runs", self.name, self.link, target)

    def _make_link(self) -> None:
        """Point the link at the slave, replacing a symlink that is there (atomically).

        Raises UsageError if another kind of file is in the way, OSError if the
        link cannot be made.
        """
        try:
            os.symlink(self.slave_path, self.link)
            return
        except FileExistsError:
            if not os.path.islink(self.link):
                raise UsageError(self.link, "The pty link path exists and is not a symlink") from None
        replace_symlink(self.slave_path, self.link)

    def _remove_link(self) -> None:
        """Remove the link, or point a taken-over one back at its target, if it is still ours."""
        original = self._lock.original
        try:
            if not (self.slave_path and os.readlink(self.link) == self.slave_path):
                if original is not None:
                    log.warning("%s: %s changed while the hub ran; not restoring it", self.name, self.link)
                return
            if original is None:
                os.unlink(self.link)
            else:
                replace_symlink(original, self.link)
                log.info("%s: %s links to %s again", self.name, self.link, original)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EINVAL):
                what = "restore" if original is not None else "remove"
                log.warning("%s: cannot %s %s: %s", self.name, what, self.link, exc.strerror)

    def _renew_pty(self) -> None:
        """Move the link to a new pty (the old slave is stuck in exclusive mode)."""
        old_fd, old_path = self._fd, self.slave_path
        try:
            self._open_pty(keep=self._line)
        except (OSError, termios.error) as exc:
            log.error("%s: cannot create a new pty: %s", self.name, _strerror(exc))
            return
        try:
            os.close(old_fd)
        except OSError:
            pass
        try:
            if os.readlink(self.link) != old_path:
                log.error("%s: %s no longer links to %s; not moving it", self.name, self.link, old_path)
                return
            self._make_link()
        except (OSError, UsageError) as exc:
            log.error("%s: cannot move %s to %s: %s", self.name, self.link, self.slave_path, exc)
            return
        log.warning(
            "%s: an application left %s in exclusive mode (TIOCEXCL); %s now links to %s "
            "(what the application left unread went with the old pty, uncounted)",
            self.name,
            old_path,
            self.link,
            self.slave_path,
        )

    # ---- application open / close ----------------------------------------------

    def _schedule_poll(self) -> None:
        if self._watch is not None:
            return  # the slave's inotify events call _poll
        if self._timer is None and self._fd >= 0:
            self._timer = self.hub.loop.call_later(POLL_INTERVAL_S, self._poll)

    def _poll(self) -> None:
        """Timer: watch for an application opening the slave (or, while reading
        is paused, closing it)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        if self._poller is None:
            return
        revents = self._poller.poll(0)
        events = revents[0][1] if revents else 0
        if events & select.POLLNVAL:
            log.error("%s: the pty master is no longer open", self.name)
            return
        hung_up = bool(events & select.POLLHUP)
        if not self.connected:
            if not hung_up or (events & select.POLLIN and self._input_waiting()):
                self._on_open()
            elif events & select.POLLIN:
                self._read_status()
        elif self.xoff_count:
            if hung_up and not self._gone:
                # Stop feeding the slave and drop what it holds; the application's
                # last input is read when reading resumes, then comes the EIO.
                self._gone = True
                unread = self._drop_unread(renew=False)
                self.lose(unread + self._end_session("the application closed", unread), Drop.UNSENT)
            elif not hung_up and self._gone:
                # Another application opened the link before that input was read;
                # it is delivered in the new session.
                self._gone = False
                self._report_close()
                self._begin_session()
                self._report_open()
        if not self.connected or self.xoff_count:
            self._schedule_poll()

    def _input_waiting(self) -> bool:
        """Data (not just packet status) is waiting in the master."""
        try:
            buf = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return False
        waiting: int = struct.unpack("i", buf)[0]
        return waiting > 0

    def _read_status(self) -> None:
        """Consume a packet-mode status byte that came while nobody holds the slave."""
        try:
            data = os.read(self._fd, READ_SIZE)
        except OSError:
            return
        if not data:
            return
        if self._packet and data[0] != _TIOCPKT_DATA:
            if data[0] & _TIOCPKT_IOCTL:
                self._line_changed()
            return
        # Data after all: an application came and went between the checks.
        self._on_open()
        self._on_read(data)

    def _on_open(self) -> None:
        self._gone = False
        self._stream = FdStream(
            self.hub.loop,
            self._fd,
            self._on_read,
            self._on_stream_error,
            drain=not self._packet,  # in packet mode every read is one packet
            on_writable=self._on_writable,
        )
        self._begin_session()
        self._report_open()
        if not self.xoff_count:
            self._stream.resume_reading()

    def _report_open(self) -> None:
        extra: list[Message] = []
        if self._msr:
            extra.append(ModemStatus(self._msr, self._msr))
        if self._packet:
            self._line = self._read_line() or self._line
            extra += self._line_messages(None, self._line)
        log.debug("%s: an application opened %s", self.name, self.slave_path)
        self.set_connected(True, extra)

    def _begin_session(self) -> None:
        """An application opened the link: it gets the port's data from now on."""
        self._opens += 1
        session = Session(self._opens, self.slave_path, self._sink, self.hub.loop.time())
        self._session = session
        self.sessions.add(session, session.connected_at)

    def _end_session(self, why: str, unread: int = 0) -> int:
        """The application is gone; return the bytes its queue still held (lost).

        Logs `why` and the slave's path with the session's counters; `unread`
        is what it left unread in the kernel (counted by the caller).
        """
        session, self._session = self._session, None
        if session is None:
            return 0
        now = self.hub.loop.time()
        lost = self.sessions.remove(session, now)
        if self._block:
            self.set_write_paused(self.sessions.blocking)
        left = f", left unread {format_bytes(unread)}" if unread else ""
        log.info(
            "%s: %s %s after %.1f s: %s%s",
            self.name,
            why,
            session.peer,
            now - session.connected_at,
            session.counters(),
            left,
        )
        return lost

    def _on_stream_error(self, exc: OSError | None) -> None:
        stream, self._stream = self._stream, None
        if exc is not None and exc.errno != errno.EIO:
            log.error("%s: pty master failed: %s", self.name, exc.strerror)
        unread = self._drop_unread()
        lost = (stream.dropped if stream is not None else 0) + unread
        lost += self._end_session("the application closed", unread)
        self.lose(lost, Drop.UNSENT)
        self._gone = False
        self._report_close()
        if lost:
            log.debug("%s: dropped %d bytes the application did not read", self.name, lost)
        self._schedule_poll()

    def _report_close(self) -> None:
        log.debug("%s: the application closed %s", self.name, self.slave_path)
        self.set_connected(False, [ModemStatus(0, self._msr)] if self._msr else None)

    def _drop_unread(self, renew: bool = True) -> int:
        """Read out what the kernel still holds for the slave; return its size.

        Also clears exclusive mode, which outlives the application's close; if
        that mode keeps us out and `renew` is true (no stream uses the master),
        the link moves to a new pty instead.
        """
        try:
            fd = os.open(self.slave_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                if renew:
                    self._renew_pty()
            else:
                log.warning("%s: cannot open %s to drop stale data: %s", self.name, self.slave_path, exc)
            return 0
        dropped = 0
        try:
            # A non-blocking read waits for the kernel's pending buffer pushes, so this
            # gets and counts everything; only a partial line in canonical mode is
            # left, and the flushes below drop it uncounted.
            for _ in range(_DRAIN_READS):
                try:
                    chunk = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                dropped += len(chunk)
            termios.tcflush(self._fd, termios.TCOFLUSH)
            termios.tcflush(fd, termios.TCIFLUSH)
            fcntl.ioctl(fd, termios.TIOCNXCL)
        except (OSError, termios.error) as exc:
            log.warning("%s: dropping stale data from %s: %s", self.name, self.slave_path, _strerror(exc))
        finally:
            os.close(fd)
        return dropped

    # ---- reading ----------------------------------------------------------------

    def _on_read(self, data: bytes) -> None:
        if self._packet:
            if data[0] != _TIOCPKT_DATA:
                if data[0] & _TIOCPKT_IOCTL:
                    self._line_changed()
                return
            if len(data) == 1:
                return
            data = data[1:]
        if self._session is not None:
            self.sessions.received(self._session, len(data), self.hub.loop.time())
        self.emit_data(data)

    def pause_reading(self) -> None:
        if self._stream is not None:
            self._stream.pause_reading()
        if self.connected:
            self._schedule_poll()

    def resume_reading(self) -> None:
        if self._stream is not None:
            self._stream.resume_reading()

    # ---- writing ----------------------------------------------------------------

    def write_data(self, data: bytes, src: int) -> None:
        """Queue data for the application (see --frame and --slow-client).

        Without an application it is unheard, counted; with one, what its queue
        cannot take is lost (whole lines with line framing), counted. With
        --slow-client=block a source along a flow-control route is throttled
        instead (XOFF) and its data queued up to the hard limit.
        """
        if not data:
            return
        if self.write_limit == 0:
            self.lose(len(data), Drop.DISCARDED)
            return
        session = self._session
        now = self.hub.loop.time()
        if session is None:
            # --buffer keeps what it can for the next application; the buffer and
            # the framing follow the line starts for it.
            unheard = self.sessions.unheard
            self.sessions.send(data, now)
            kept = len(data) - (self.sessions.unheard - unheard)
            self.discard_unheard(len(data) - kept)
            self.bytes_out += kept
            return
        before = session.bytes_out
        dropped = self.sessions.send(data, now, self._block and src in self.fc_sources)
        if dropped:
            self.lose(dropped, Drop.SLOW_CLIENT)
        self.bytes_out += session.bytes_out - before
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def send_data(self, data: bytes) -> None:
        self.write_data(data, -1)

    def queued_bytes(self) -> int:
        return self._session.queued if self._session is not None else 0

    def _sink(self, data: Chunk) -> Chunk | None:
        """Write what the master takes now; return the rest (the session queues it)."""
        stream = self._stream
        n = stream.offer(data) if stream is not None else 0
        if n == len(data):
            return None
        return memoryview(data)[n:] if n else data

    def _on_writable(self) -> None:
        """The master takes data again: write out the application's queue."""
        if self._session is None:
            return
        self.sessions.resume(self._session)
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def write_signal(self, msg: Message) -> None:
        t = type(msg)
        if t is SetBaud:
            self._set_line(baud=msg.baud)  # type: ignore[union-attr]
        elif t is SetLineControl:
            lc: LineControl = msg.lc  # type: ignore[union-attr]
            if lc.data_bits not in (None, 8) or lc.parity not in (None, Parity.NONE):
                self._warn_once("lc", "%s: a pty has 8 data bits and no parity; ignoring %s", self.name, lc)
            if lc.stop_bits is not None:
                self._set_line(stop_bits=lc.stop_bits)
        elif t is SetFlow:
            # A pty has no flow control it could switch on (no RTS/CTS, and EXTPROC
            # turns the kernel's XON/XOFF off): say so, to whoever asked.
            flow: Flow = msg.flow  # type: ignore[union-attr]
            if {flow.outbound, flow.inbound} - {None, FlowMode.NONE}:
                self._warn_once("flow", "%s: a pty has no flow control; ignoring %s", self.name, flow)
            if self.wanted & In.LFLOW:
                self.emit([LocalFlowStatus(Flow(FlowMode.NONE, FlowMode.NONE))])
        elif t is PurgeTx:
            if self._session is not None:
                self.sessions.purge(self._session)
                if self._block:
                    self.set_write_paused(self.sessions.blocking)
            try:
                termios.tcflush(self._fd, termios.TCOFLUSH)
            except (OSError, termios.error) as exc:
                log.debug("%s: purge: %s", self.name, _strerror(exc))

    # ---- line settings ---------------------------------------------------------

    def _read_line(self) -> LineSettings | None:
        try:
            return read_line_settings(self._fd)[0]
        except (OSError, termios.error) as exc:
            log.debug("%s: reading line settings: %s", self.name, _strerror(exc))
            return None

    def _line_changed(self) -> LineSettings | None:
        """The application changed termios (TIOCPKT_IOCTL): report what changed.

        Returns the settings read (None if they could not be read).
        """
        try:
            line, lflag = read_line_settings(self._fd)
            if self._packet and not lflag & _EXTPROC:
                # The application cleared EXTPROC; without it no further change is seen.
                update_termios(self._fd, lflag_on=_EXTPROC)
        except (OSError, termios.error) as exc:
            log.debug("%s: reading line settings: %s", self.name, _strerror(exc))
            return None
        old, self._line = self._line, line
        if self.connected:
            msgs = self._line_messages(old, line)
            if msgs:
                self.emit(msgs)
        return line

    def _line_messages(self, old: LineSettings | None, new: LineSettings | None) -> list[Message]:
        """RBR/RLC messages for the wanted settings that differ between `old` and `new`."""
        msgs: list[Message] = []
        if new is None:
            return msgs
        if self.wanted & In.RBR and new.baud is not None and (old is None or new.baud != old.baud):
            msgs.append(RemoteBaudStatus(new.baud))
        if self.wanted & In.RLC and (old is None or new.stop_bits != old.stop_bits):
            msgs.append(RemoteLcStatus(LineControl(stop_bits=new.stop_bits)))
        return msgs

    def _set_line(self, baud: int | None = None, stop_bits: StopBits | None = None) -> None:
        """Apply SET_BR/SET_LC to the slave's termios without reporting it back.

        Settings the slave already has are not written. Writing termios is a
        read-modify-write the application can race: a change it makes between
        the port's read and write is overwritten, and its notice then reads back
        what the port wrote, so the change is lost unreported. The usual SET_BR
        and SET_LC (an RFC 2217 server's answers echoing what the port reported)
        set nothing new and so never race; only a real change from the far end
        can meet the application's own, and then the last writer wins.
        """
        if self._fd < 0:
            return
        if self._packet:
            current = self._line_changed()  # report a change the application made just before
        else:
            current = self._read_line()
        if current is not None and _has_settings(current, baud, stop_bits):
            return
        try:
            update_termios(self._fd, baud=baud, stop_bits=stop_bits)
        except (OSError, termios.error) as exc:
            log.warning("%s: cannot set %s: %s", self.name, _describe(baud, stop_bits), _strerror(exc))
        line = self._read_line()
        if line is None:
            return
        self._line = line
        if not _has_settings(line, baud, stop_bits):
            log.warning("%s: %s did not take", self.name, _describe(baud, stop_bits))

    def _warn_once(self, key: str, fmt: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(fmt, *args)


def _has_settings(line: LineSettings, baud: int | None, stop_bits: StopBits | None) -> bool:
    """`line` has the baud rate and stop bits asked for (None: any); 1.5 stop bits are two."""
    if baud is not None and line.baud != baud:
        return False
    return stop_bits is None or (line.stop_bits == StopBits.ONE) == (stop_bits == StopBits.ONE)


def _describe(baud: int | None, stop_bits: StopBits | None) -> str:
    return f"{baud} baud" if baud is not None else f"stop bits {stop_bits.name if stop_bits else '?'}"


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, termios.error) and len(exc.args) > 1:
        return str(exc.args[1])
    return str(exc)


# ---- the driver module -----------------------------------------------------------


class PtyDriver(Driver):
    """The pty driver module: virtual serial ports for local applications."""

    NAME = "pty"
    DESCRIPTION = "Pseudo-terminal (virtual serial port) driver"
    USAGE = USAGE
    DEFAULTS = {
        "--write-limit": DEFAULT_WRITE_LIMIT,
        "--frame": Frame.BYTES,
        "--slow-client": SlowClient.BLOCK,
        "--buffer": 0,
        "--replace-link": False,
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._links: set[str] = set()

    def config_arg(self, arg: str) -> bool:
        if not super().config_arg(arg):
            return False
        if self.options.pop("--no-replace-link", False):
            self.options["--replace-link"] = False
        return True

    def convert_option(self, name: str, value: Any) -> Any:
        """Validate one option value; return it typed. Raises UsageError."""
        if name == "--write-limit":
            return parse_write_limit(value)
        if name == "--frame":
            return parse_frame(value)
        if name == "--buffer":
            return parse_buffer(value)
        if name == "--slow-client":
            try:
                return SlowClient(str(value).strip().lower())
            except ValueError:
                raise UsageError(None, "Invalid --slow-client value (block or drop)") from None
        return value

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> PtyPort:
        """A pty port whose link is `path`. Raises UsageError for a bad path."""
        if not sys.platform.startswith("linux"):
            raise UsageError(path, "The pty driver needs Linux")
        link = _check_link(path)
        if link in self._links:
            raise UsageError(path, "Another pty port already uses this link path")
        self._links.add(link)
        opt = {**self.DEFAULTS, **options}
        slow: SlowClient = opt["--slow-client"]
        port = PtyPort(
            self.hub,
            index,
            link,
            opt["--write-limit"],
            frame=opt["--frame"],
            slow=SlowClient.DROP if slow is SlowClient.DISCONNECT else slow,
            buffer=opt["--buffer"],
            replace_link=bool(opt["--replace-link"]),
        )
        if slow is SlowClient.DISCONNECT:
            port.warnings.append(
                f"{port.name}: --slow-client=disconnect does not apply to a pty (the hub cannot "
                "close an application's end); it drops data instead"
            )
        return port
