"""Password access to listeners: a client sends the password and a line end first.

Serial-to-Ethernet servers call it "password authorization". A listener given
``--password-file`` reads each new connection's first line (after the TLS
handshake, if any) before anything reaches a port, a session or its filters:

* the line (LF or CR LF at its end) must be the file's password; then the
  connection goes on as usual and whatever followed the line is its first data;
* a wrong line, a line longer than the password can be, nothing within
  ``--password-timeout``, or the peer closing first: the connection is refused
  ``REFUSE_DELAY_S`` after the verdict (the same delay whatever went wrong, so
  timing says nothing about the password), counted, and logged once per
  address per interval (`hub.netsec.Gate`). An address with `MAX_FAILURES`
  failures within `FAILURE_WINDOW_S` is refused at once (no password is read)
  until its failures age out;
* the password is compared by SHA-256 digest with `hmac.compare_digest`, is
  never logged, traced or tapped (it never reaches the port), and its object
  shows only the file name (`Secret`).

A tcp client port given ``--password-file`` sends the line on connecting, so two
hubs interoperate. The password crosses the network as it is: use it with TLS.

Two parts: `PasswordCheck` is sans-IO (bytes in, verdict out); `Admission`
drives one connection's check on an asyncio transport for a listener driver
(``tcp``, ``tcp-multi``), with the timeout and the refusal delay.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Callable
from typing import Any

from .errors import UsageError

__all__ = [
    "CONVERTERS",
    "DEFAULTS",
    "DEFAULT_TIMEOUT_S",
    "FAILURE_WINDOW_S",
    "MAX_FAILURES",
    "MAX_PASSWORD_BYTES",
    "PASSWORD_USAGE",
    "REFUSE_DELAY_S",
    "Admission",
    "Check",
    "PasswordCheck",
    "Secret",
    "read_password_file",
    "warnings",
]

#: The longest password a file may hold.
MAX_PASSWORD_BYTES = 256
#: A wrong or missing password is refused this long after the verdict.
REFUSE_DELAY_S = 1.0
#: --password-timeout default: seconds from connect (or the TLS handshake) to the line end.
DEFAULT_TIMEOUT_S = 10.0
#: An address that failed this often within the window is refused at once.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0

PASSWORD_USAGE = f"""\
  --password-file=<file>
                      Password access. Listeners: a client must send the
                      password in <file> (its first line) and a line end
                      before anything else; a wrong or missing one is refused
                      after {REFUSE_DELAY_S:g} s, counted, and an address with
                      {MAX_FAILURES} failures in {FAILURE_WINDOW_S:g} s is refused at once. tcp client
                      ports send it on connecting. The password crosses the
                      network as it is: use TLS too. Empty resets.
  --password-timeout=<s>
                      Seconds a client has to send the password line.
                      Default {DEFAULT_TIMEOUT_S:g}.
"""


class Secret:
    """A password read from a file. Compares by digest; shows only the file name."""

    __slots__ = ("_digest", "_value", "path")

    def __init__(self, value: bytes, path: str = "?"):
        self._value = value
        self._digest = hashlib.sha256(value).digest()
        self.path = path

    def __repr__(self) -> str:
        return f"<Secret from {self.path}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._digest, other._digest)

    def __hash__(self) -> int:
        return hash(self._digest)

    def matches(self, given: bytes) -> bool:
        """True if `given` is the password (constant time in the password's content)."""
        return hmac.compare_digest(hashlib.sha256(given).digest(), self._digest)

    def line(self) -> bytes:
        """What a client sends: the password and a line end."""
        return self._value + b"\n"

    def warning(self) -> str | None:
        """A warning if the file is readable by users other than its owner, else None."""
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            return None
        if mode & 0o044:
            return f"the password file {self.path} is readable by other users (chmod 600 it)"
        return None


def warnings(name: str, secret: Secret, host: str | None, tls: bool) -> list[str]:
    """Start-up warnings for port `name` with a password: a file others can read, and a
    password sent without TLS unless `host` (the listener's interface or the client's
    server) is this machine."""
    found = [w for w in (secret.warning(),) if w is not None]
    if tls or _is_local(host):
        return found
    found.append(
        f"{name} sends its password over plain TCP, where anybody on the way can read it; "
        f"use TLS too (--tls-cert and --tls-key on the listener, --tls-ca on the client)"
    )
    return found


def _is_local(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def read_password_file(text: str) -> Secret | None:
    """--password-file: the file's first line (without its line end); '' resets.

    Raises UsageError: the file cannot be read, the password is empty or longer
    than MAX_PASSWORD_BYTES.
    """
    path = os.path.expanduser(text.strip())
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(MAX_PASSWORD_BYTES + 3)
    except OSError as exc:
        raise UsageError(None, f"Cannot read the password file {path}: {exc.strerror}") from None
    value = head.split(b"\n", 1)[0].removesuffix(b"\r")
    if not value:
        raise UsageError(None, f"The password file {path} starts with an empty line")
    if len(value) > MAX_PASSWORD_BYTES:
        raise UsageError(None, f"The password in {path} is longer than {MAX_PASSWORD_BYTES} bytes")
    return Secret(value, path)


def parse_timeout(text: str) -> float:
    """--password-timeout: seconds, more than 0 and at most 3600. Raises UsageError."""
    try:
        value = float(text.strip())
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise UsageError(None, "Invalid --password-timeout (more than 0, at most 3600 seconds)")
    return value


DEFAULTS: dict[str, Any] = {"--password-file": None, "--password-timeout": DEFAULT_TIMEOUT_S}
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "--password-file": read_password_file,
    "--password-timeout": parse_timeout,
}


# ---- one connection, sans-IO -------------------------------------------------------


class Check(enum.Enum):
    """Where one connection's password line stands."""

    #: No line end yet.
    PENDING = "pending"
    #: The right password: the connection may go on.
    OK = "ok"
    #: A wrong password.
    WRONG = "wrong password"
    #: More bytes than a password line can have, without a line end.
    TOO_LONG = "password line too long"


class PasswordCheck:
    """Reads one connection's password line. Bounded: at most a password's length plus CR LF."""

    __slots__ = ("_buf", "_secret", "state")

    def __init__(self, secret: Secret):
        self._secret = secret
        self._buf = b""
        self.state = Check.PENDING

    def feed(self, data: bytes) -> tuple[Check, bytes]:
        """Take bytes from the peer. Returns the state and, once OK, the bytes after the line."""
        if self.state is not Check.PENDING:
            raise RuntimeError(f"feed() after the verdict ({self.state.value})")
        nl = data.find(b"\n")
        if nl < 0:
            self._buf += data
            if len(self._buf) > MAX_PASSWORD_BYTES + 1:  # room for a CR
                self._buf = b""
                self.state = Check.TOO_LONG
            return self.state, b""
        line = (self._buf + data[:nl]).removesuffix(b"\r")
        self._buf = b""
        self.state = Check.OK if self._secret.matches(line) else Check.WRONG
        return self.state, data[nl + 1 :] if self.state is Check.OK else b""


# ---- one connection on a transport ----------------------------------------------------


class Admission:
    """Runs one accepted connection's password check on its transport.

    The driver hands it what the connection reads (`feed`) until `done`, and
    calls `lost()` when the connection ends. On the right password it calls
    `on_ok(rest)` (the bytes after the line). Otherwise it stops reading,
    reports the failure (`on_fail(reason)`: the driver counts and logs it)
    and aborts the connection `REFUSE_DELAY_S` later.
    """

    __slots__ = ("_check", "_loop", "_on_fail", "_on_ok", "_timeout_s", "_timer", "_transport", "done")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        secret: Secret,
        timeout_s: float,
        on_ok: Callable[[bytes], None],
        on_fail: Callable[[str], None],
    ):
        self._loop = loop
        self._transport = transport
        self._check = PasswordCheck(secret)
        self._timeout_s = timeout_s
        self._on_ok = on_ok
        self._on_fail = on_fail
        #: The verdict is in (the right password, or a refusal on its way).
        self.done = False
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout_s, self._timed_out)

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        state, rest = self._check.feed(data)
        if state is Check.PENDING:
            return
        if state is Check.OK:
            self.done = True
            self._cancel()
            self._on_ok(rest)
        else:
            self._refuse(state.value)

    def lost(self) -> None:
        """The connection ended: before its verdict, that is a missing password."""
        if not self.done:
            self.done = True
            self._on_fail("closed before sending the password")
        self._cancel()

    def cancel(self) -> None:
        """The listener closes: no verdict, nothing counted."""
        self.done = True
        self._cancel()

    def _timed_out(self) -> None:
        self._timer = None
        if not self.done:
            self._refuse(f"no password within {self._timeout_s:g} s")

    def _refuse(self, reason: str) -> None:
        self.done = True
        self._cancel()
        transport = self._transport
        if not transport.is_closing():
            transport.pause_reading()
        self._on_fail(reason)
        self._timer = self._loop.call_later(REFUSE_DELAY_S, transport.abort)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
