"""The mqtt driver: a topic prefix on an MQTT broker as a hub port.

A hub serves one host's devices; a broker (mosquitto, EMQX, HiveMQ, ...) fans
messages out to any number of subscribers across machines, keeps retained state
and publishes a client's last will when it vanishes. This driver makes the
broker a port, so one device's stream reaches any number of hubs.

Topology
--------

::

      device hub (--role=device)                consumer hubs (--role=client)
    +------------------------------+          +------------------------------+
    | /dev/ttyUSB0 <-> MQTT(1) ----+-- rx --> | MQTT(0) <-> pty /tmp/gps     | B
    |              publishes rx,   | <- tx ---+ publishes tx, subscribes rx  |
    |              subscribes tx   |          +------------------------------+
    |              status (will)   |  broker  +------------------------------+
    |              ctl "state" --->+-- ctl -->| MQTT(0) <-> tcp *7000 ...    | C
    |              <--- ctl "set"  |          +------------------------------+
    +------------------------------+

Topics under the prefix:

* ``<prefix>/rx``: the device's output. The device role publishes what is
  written to its port; a client's port reads it.
* ``<prefix>/tx``: input for the device. A client publishes what is written to
  its port; the device role's port reads it.
* ``<prefix>/ctl``: line settings and signals as small JSON objects. Clients
  publish requests ``{"set": {...}}`` (baud, data_bits, parity, stop_bits,
  dtr, rts, break, purge); the device role publishes its state, retained,
  ``{"state": {...}}`` (baud, data_bits, parity, stop_bits, cts, dsr, ri, dcd).
  Values: parity is "none", "odd", "even", "mark" or "space"; stop_bits 1, 1.5
  or 2; the pins are booleans. Unknown keys are ignored.
* ``<prefix>/status``: "online" (retained) while the device hub is connected;
  the last will turns it "offline" when the connection ends in any way.

The roles mirror the telnet filter's RFC 2217 roles, so the usual filters fit:
the device role is the access server (a client's request becomes RBR/RLC
status, DSR from DTR, CTS from RTS, break status and purge requests; SET_BR,
SET_LC and the emulated CTS/DSR/RI/DCD pins written to it become its state),
the client role is the RFC 2217 client (SET_BR, SET_LC, DTR/RTS/BREAK pins and
PURGE_TX written to it become requests; the device's state becomes LBR/LLC
status and modem status).

Notes on the broker and the client library
------------------------------------------

* aiomqtt (on paho-mqtt) is an optional extra; it is imported only when an
  mqtt port is created. Its connect runs in a worker thread (paho's connect
  blocks); everything else runs on the hub's loop through add_reader/
  add_writer, so uvloop works.
* Status "offline" at shutdown: close() cancels the connection task, whose
  cleanup publishes "offline" and disconnects while the hub gives cancelled
  tasks their grace period (hub.main._finish_tasks). Should the loop stop
  first, nothing goes out, no MQTT DISCONNECT either, so the broker publishes
  the will: the status ends "offline" either way.
* Received messages go to the hub straight from aiomqtt's socket callback
  (its ``queue_type`` option, see _Inbox), not through its message iterator,
  which costs a task per message and let bursts pile up unbounded.
* MQTT has no flow control towards a subscriber: while the hub pauses this
  port's input, received data is held up to HOLD_LIMIT_BYTES, then dropped and
  counted in `dropped_in`.
* Retained data on rx/tx is ignored: nobody should get a stale line on
  subscribing. Empty payloads (clearing a retained message) are ignored too.
* At most PUBLISH_WINDOW publishes are in flight; what is in flight when the
  connection breaks may be lost (QoS 0) or sent twice (QoS 1), and is counted
  as lost.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import json
import logging
import secrets
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.caps import In, Out
from hub.errors import UsageError
from hub.logs import peer_text
from hub.messages import (
    BreakStatus,
    LineControl,
    LocalBaudStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    Msr,
    Parity,
    Pin,
    PurgeTx,
    PurgeTxIn,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetLineControl,
    SetPins,
    StopBits,
)
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState

if TYPE_CHECKING:
    import aiomqtt

__all__ = [
    "MISSING_AIOMQTT",
    "USAGE",
    "ChunkFramer",
    "CtlError",
    "CtlKind",
    "Frame",
    "LineFramer",
    "MqttDriver",
    "MqttPort",
    "MqttSettings",
    "MqttUrl",
    "Role",
    "Topics",
    "decode_ctl",
    "encode_ctl",
    "field_messages",
    "make_framer",
    "parse_url",
    "signal_fields",
]

log = logging.getLogger(__name__)

MISSING_AIOMQTT = "the mqtt driver needs aiomqtt: pip install 'hub4com-py[mqtt]'"

USAGE = f"""\
Usage: mqtt [options]

MQTT driver: a port is a topic prefix on an MQTT broker, so a device's stream
reaches any number of hubs. A port argument is a broker URL whose path is the
topic prefix:

  mqtt[s]://[<user>[:<password>]@]<broker>[:<port>]/<topic-prefix>

mqtts is MQTT over TLS (port 8883 unless given; mqtt uses 1883). The port is
shown as MQTT(<n>). The options apply to every mqtt port after them.

Topics under the prefix:
  rx      the device's output: the device role publishes, clients read it
  tx      input for the device: clients publish, the device role reads it
  ctl     JSON: clients publish requests {{"set": {{"baud": 4800, "dtr": true}}}},
          the device role publishes its state {{"state": {{...}}}} (retained)
  status  "online" or "offline" (retained, the last will) of the device hub

Options:
  --role=<r>          d[evice]: this hub has the device; what is written to the
                      port is published on rx, tx enters the hub. c[lient]: a
                      consumer; rx enters the hub, what is written is published
                      on tx. Default device.
  --client-id=<id>    MQTT client identifier, one per port; empty for a random
                      hub4com-<hex> identifier. Default empty.
  --qos=<n>           QoS of data and ctl messages: 0 or 1. Default 0.
  --keepalive=<s>     Seconds between keepalive pings; a silent broker is given
                      up after 1.5 times this. Default 30.
  --tls-ca=<file>     CA certificates (PEM) that verify an mqtts broker; empty
                      for the system's. Default empty.
  --tls-cert=<file>   Client certificate (PEM) for mqtts. Default none.
  --tls-key=<file>    Private key of --tls-cert (PEM); empty if it is in the
                      certificate file. Default empty.
  --backoff=<ms>      Reconnect delay <min>[,<max>] in milliseconds: after the
                      broker goes away or refuses, retry after <min>, doubling
                      per failure up to <max>. Default 500,30000.
  --frame=<f>         How data written to the port is published. l[ine]: one
                      message per line (up to and with LF); a partial line waits
                      for its end. b[ytes]: chunks, coalesced up to
                      --frame-bytes or --frame-delay. Default line.
  --frame-bytes=<n>   Largest message in bytes; a longer line is cut. Default 4096.
  --frame-delay=<ms>  Bytes mode: publish at most this many milliseconds after
                      the first byte of a message arrived. Default 10.
  --write-limit=<s>   Write queue limit in bytes (data waiting for the broker);
                      0 discards everything written. Default {DEFAULT_WRITE_LIMIT}.

Notes:
  The broker going away disconnects the port; it reconnects with backoff, and
  data written meanwhile waits in the write queue (or pauses its source along a
  flow-control route); what does not fit is counted as lost.
  Device hub: put linectl on the device port to apply a client's baud rate and
  line control, and pinmap (--rts=cts --dtr=dsr --break=break) for its pins.
  Client hub: put linectl on the mqtt port to send an application's settings.

Example: the hub with the GPS publishes it, any number of hubs read it.
  hub4com --baud=4800 /dev/ttyUSB0 --use-driver=mqtt mqtt://broker/fleet/gps7
  hub4com --use-driver=mqtt --role=client mqtt://broker/fleet/gps7 --use-driver=pty \\
    /tmp/gps7
"""

#: Publishes in flight at once (measured best on loopback for QoS 0 and 1).
PUBLISH_WINDOW = 8
#: Data received while the hub pauses this port's input is held up to this many bytes.
HOLD_LIMIT_BYTES = 256 * 1024
#: A ctl payload longer than this is ignored.
MAX_CTL_BYTES = 4096
#: Status payloads.
ONLINE = b"online"
OFFLINE = b"offline"
#: How long leaving a session waits for the broker to take the "offline" status.
_OFFLINE_TIMEOUT_S = 1.0

_DEFAULT_PORT = {False: 1883, True: 8883}
_TOPIC_FORBIDDEN = ("+", "#", "\0")


# ---- option values ----------------------------------------------------------------


class Role(enum.Enum):
    """Which side of the broker this port is on."""

    #: This hub has the device: publishes rx and state, reads tx and requests.
    DEVICE = "device"
    #: A consumer: reads rx and state, publishes tx and requests.
    CLIENT = "client"


class Frame(enum.Enum):
    """How data written to the port is cut into messages."""

    #: One message per LF-terminated line.
    LINE = "line"
    #: Chunks coalesced up to a size or delay bound.
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """A parsed port argument."""

    tls: bool
    host: str
    port: int
    prefix: str
    username: str | None = None
    password: str | None = None

    @property
    def broker(self) -> str:
        """host:port, IPv6 addresses in brackets (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.broker}/{self.prefix}"


def parse_url(text: str) -> MqttUrl:
    """Parse ``mqtt[s]://[user[:pass]@]host[:port]/<prefix>``.

    User, password and prefix are percent-decoded. Returns the MqttUrl.
    Raises UsageError(text, reason) for anything else.
    """
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise UsageError(text, "Invalid MQTT URL (bad port or address)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts"):
        raise UsageError(text, "Invalid MQTT URL (use mqtt://broker/prefix or mqtts://...)")
    if not parts.hostname:
        raise UsageError(text, "Invalid MQTT URL (no broker)")
    if parts.query or parts.fragment or text.rstrip().endswith(("?", "#")):
        raise UsageError(text, "Invalid MQTT URL (no ?query or #fragment allowed)")
    prefix = urllib.parse.unquote(parts.path).strip("/")
    if not prefix:
        raise UsageError(text, "Missing topic prefix (mqtt://broker/<prefix>)")
    if any(c in prefix for c in _TOPIC_FORBIDDEN):
        raise UsageError(text, "The topic prefix may not contain + or # (no wildcards)")
    if port == 0:
        raise UsageError(text, "Invalid MQTT URL (bad port or address)")
    tls = scheme == "mqtts"
    unquote = urllib.parse.unquote
    return MqttUrl(
        tls,
        parts.hostname,
        port or _DEFAULT_PORT[tls],
        prefix,
        unquote(parts.username) if parts.username is not None else None,
        unquote(parts.password) if parts.password is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Topics:
    """The four topics under one prefix."""

    rx: str
    tx: str
    ctl: str
    status: str

    @classmethod
    def of(cls, prefix: str) -> Topics:
        return cls(f"{prefix}/rx", f"{prefix}/tx", f"{prefix}/ctl", f"{prefix}/status")

    def data_out(self, role: Role) -> str:
        """Where data written to the port is published."""
        return self.rx if role is Role.DEVICE else self.tx

    def data_in(self, role: Role) -> str:
        """Whose data enters the hub."""
        return self.tx if role is Role.DEVICE else self.rx

    def subscriptions(self, role: Role) -> list[str]:
        if role is Role.DEVICE:
            return [self.tx, self.ctl]
        return [self.rx, self.ctl, self.status]


# ---- framing (sans-IO) --------------------------------------------------------------


class LineFramer:
    """``--frame=line``: one message per LF-terminated line, the LF included.

    A partial line waits for its end. A line longer than `max_bytes` is cut
    into messages of that size (counted in `cut_lines`), so the buffer stays
    bounded. Concatenating the messages gives back the stream exactly.
    """

    #: A line framer never needs a timer.
    deadline: float | None = None

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.cut_lines = 0
        self._tail = b""

    @property
    def pending(self) -> int:
        """Bytes held back (the partial last line)."""
        return len(self._tail)

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Take `data`; return the messages now complete."""
        buf = self._tail + data if self._tail else data
        end = buf.rfind(b"\n") + 1
        out: list[bytes] = []
        if end:
            lines = buf[:end].split(b"\n")
            lines.pop()  # the empty piece after the last LF
            limit = self.max_bytes - 1
            for line in lines:
                if len(line) > limit:
                    self._cut(line + b"\n", out)
                else:
                    out.append(line + b"\n")
            buf = buf[end:]
        if len(buf) > self.max_bytes:
            keep = len(buf) % self.max_bytes or self.max_bytes
            self._cut(buf[:-keep], out)
            buf = buf[-keep:]
        self._tail = buf
        return out

    def due(self, now: float) -> list[bytes]:
        return []

    def clear(self) -> int:
        """Drop the partial line; return its size."""
        n, self._tail = len(self._tail), b""
        return n

    def _cut(self, data: bytes, out: list[bytes]) -> None:
        if self.cut_lines == 0:
            log.warning("a line longer than %d bytes is published in pieces", self.max_bytes)
        self.cut_lines += 1
        m = self.max_bytes
        out.extend(data[i : i + m] for i in range(0, len(data), m))


class ChunkFramer:
    """``--frame=bytes``: chunks coalesced up to `max_bytes` or `delay_s`.

    A message goes out when `max_bytes` have gathered, or `delay_s` after the
    first byte it holds arrived (`deadline`; the owner calls `due` then).
    """

    def __init__(self, max_bytes: int, delay_s: float):
        self.max_bytes = max_bytes
        self.delay_s = delay_s
        #: When the oldest byte held must go out, or None if nothing is held.
        self.deadline: float | None = None
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> int:
        return self._size

    def feed(self, data: bytes, now: float) -> list[bytes]:
        """Take `data`; return the messages that reached the size bound."""
        if not data:
            return []
        if not self._parts:
            self.deadline = now + self.delay_s
        self._parts.append(data)
        self._size += len(data)
        if self._size < self.max_bytes:
            return []
        buf = b"".join(self._parts)
        m = self.max_bytes
        full = len(buf) - len(buf) % m
        out = [buf[i : i + m] for i in range(0, full, m)]
        rest = buf[full:]
        self._parts = [rest] if rest else []
        self._size = len(rest)
        if not rest:
            self.deadline = None
        return out

    def due(self, now: float) -> list[bytes]:
        """The held bytes as one message if their deadline has come."""
        if self.deadline is None or now < self.deadline:
            return []
        buf = b"".join(self._parts)
        self._parts = []
        self._size = 0
        self.deadline = None
        return [buf]

    def clear(self) -> int:
        """Drop what is held; return its size."""
        n = self._size
        self._parts, self._size, self.deadline = [], 0, None
        return n


def make_framer(frame: Frame, max_bytes: int, delay_s: float) -> LineFramer | ChunkFramer:
    return LineFramer(max_bytes) if frame is Frame.LINE else ChunkFramer(max_bytes, delay_s)


# ---- ctl messages (sans-IO) ---------------------------------------------------------


class CtlKind(enum.Enum):
    """The two kinds of ctl message (the JSON object's only key)."""

    #: A client's request to the device (deltas).
    SET = "set"
    #: The device's state (complete, retained).
    STATE = "state"


class CtlError(ValueError):
    """A ctl payload that is not valid JSON of the expected shape."""


_PARITY_NAMES: dict[str, Parity] = {p.name.lower(): p for p in Parity}
_STOP_NUMBERS: dict[float, StopBits] = {1: StopBits.ONE, 1.5: StopBits.ONE_POINT_FIVE, 2: StopBits.TWO}
_STOP_JSON: dict[StopBits, int | float] = {
    v: (int(k) if k == int(k) else k) for k, v in _STOP_NUMBERS.items()
}

#: Pins a client's requests carry (written SET_PIN_STATE bits).
_CLIENT_PINS: dict[Pin, str] = {Pin.DTR: "dtr", Pin.RTS: "rts", Pin.BREAK: "break"}
#: Emulated input pins the device state carries (written SET_PIN_STATE bits).
_DEVICE_PINS: dict[Pin, str] = {Pin.CTS: "cts", Pin.DSR: "dsr", Pin.RI: "ri", Pin.DCD: "dcd"}
#: Device state modem fields -> MSR bits (client side).
_STATE_MSR: dict[str, Msr] = {"cts": Msr.CTS, "dsr": Msr.DSR, "ri": Msr.RI, "dcd": Msr.DCD}
#: Client request fields -> the MSR bit they are reported as (device side, null-modem
#: style like an RFC 2217 server: DTR drives DSR, RTS drives CTS).
_REQUEST_MSR: dict[str, Msr] = {"dtr": Msr.DSR, "rts": Msr.CTS}


def _json_int(low: int, high: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if type(v) is not int or not low <= v <= high:
            raise CtlError(f"expected an integer from {low} to {high}")
        return v

    return check


def _json_bool(v: Any) -> bool:
    if type(v) is not bool:
        raise CtlError("expected true or false")
    return v


def _json_parity(v: Any) -> Parity:
    p = _PARITY_NAMES.get(v) if isinstance(v, str) else None
    if p is None:
        raise CtlError(f"expected one of {', '.join(_PARITY_NAMES)}")
    return p


def _json_stop(v: Any) -> StopBits:
    s = _STOP_NUMBERS.get(v) if type(v) in (int, float) else None
    if s is None:
        raise CtlError("expected 1, 1.5 or 2")
    return s


_LC_FIELDS: dict[str, Callable[[Any], Any]] = {
    "baud": _json_int(1, 100_000_000),
    "data_bits": _json_int(5, 8),
    "parity": _json_parity,
    "stop_bits": _json_stop,
}

#: Fields of each kind: name -> JSON value check returning the typed value.
_FIELDS: dict[CtlKind, dict[str, Callable[[Any], Any]]] = {
    CtlKind.SET: {**_LC_FIELDS, **dict.fromkeys(("dtr", "rts", "break", "purge"), _json_bool)},
    CtlKind.STATE: {**_LC_FIELDS, **dict.fromkeys(_STATE_MSR, _json_bool)},
}

_TO_JSON: dict[str, Callable[[Any], Any]] = {
    "parity": lambda p: Parity(p).name.lower(),
    "stop_bits": lambda s: _STOP_JSON[StopBits(s)],
}


def encode_ctl(kind: CtlKind, fields: dict[str, Any]) -> bytes:
    """The JSON payload for `fields` (typed values, as decode_ctl returns them)."""
    body = {k: _TO_JSON[k](v) if k in _TO_JSON else v for k, v in fields.items()}
    return json.dumps({kind.value: body}, separators=(",", ":"), sort_keys=True).encode()


def decode_ctl(payload: bytes) -> tuple[CtlKind, dict[str, Any]]:
    """Parse a ctl payload. Returns its kind and typed fields (unknown keys dropped).

    Raises CtlError naming the first problem; a message with a bad field is
    rejected whole.
    """
    if len(payload) > MAX_CTL_BYTES:
        raise CtlError(f"longer than {MAX_CTL_BYTES} bytes")
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CtlError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise CtlError('expected {"set": {...}} or {"state": {...}}')
    (key, body), *_ = obj.items()
    try:
        kind = CtlKind(key)
    except ValueError:
        raise CtlError(f"unknown kind {peer_text(key)} (expected set or state)") from None
    if not isinstance(body, dict):
        raise CtlError(f"{peer_text(key)} is not an object")
    checks = _FIELDS[kind]
    fields: dict[str, Any] = {}
    for name, value in body.items():
        check = checks.get(name)
        if check is None:
            continue  # a newer peer's field
        try:
            fields[name] = check(value)
        except CtlError as exc:
            raise CtlError(f"{name}: {exc}") from None
    return kind, fields


def _lc_fields(lc: LineControl) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if lc.data_bits is not None:
        fields["data_bits"] = lc.data_bits
    if lc.parity is not None:
        fields["parity"] = lc.parity
    if lc.stop_bits is not None:
        fields["stop_bits"] = lc.stop_bits
    return fields


def signal_fields(role: Role, msg: Message) -> dict[str, Any]:
    """The ctl fields a message written to a `role` port stands for ({} if none).

    Client: SET_BR, SET_LC, DTR/RTS/BREAK pins and PURGE_TX (a request).
    Device: SET_BR, SET_LC (the settings in force) and the emulated CTS/DSR/RI/DCD pins.
    """
    t = type(msg)
    if t is SetBaud:
        return {"baud": msg.baud}  # type: ignore[union-attr]
    if t is SetLineControl:
        return _lc_fields(msg.lc)  # type: ignore[union-attr]
    if t is SetPins:
        pins = _CLIENT_PINS if role is Role.CLIENT else _DEVICE_PINS
        value, mask = msg.value, msg.mask  # type: ignore[union-attr]
        return {name: bool(value & pin) for pin, name in pins.items() if mask & pin}
    if t is PurgeTx and role is Role.CLIENT:
        return {"purge": True}
    return {}


def field_messages(role: Role, fields: dict[str, Any], wanted: In) -> list[Message]:
    """The hub messages a `role` port emits for ctl fields it received.

    Device (a client's request): RBR, RLC, DSR from dtr and CTS from rts,
    BREAK status, purge request. Client (the device's state): LBR, LLC, modem
    status. Only what somebody consumes (`wanted`) is emitted.
    """
    out: list[Message] = []
    device = role is Role.DEVICE
    baud = fields.get("baud")
    if baud is not None and wanted & (In.RBR if device else In.LBR):
        out.append(RemoteBaudStatus(baud) if device else LocalBaudStatus(baud))
    lc = LineControl(fields.get("data_bits"), fields.get("parity"), fields.get("stop_bits"))
    if not lc.empty and wanted & (In.RLC if device else In.LLC):
        out.append(RemoteLcStatus(lc) if device else LocalLcStatus(lc))
    value = mask = 0
    for name, bit in (_REQUEST_MSR if device else _STATE_MSR).items():
        if name in fields and wanted & bit:
            mask |= bit
            if fields[name]:
                value |= bit
    if mask:
        out.append(ModemStatus(value, mask))
    if device:
        if "break" in fields and wanted & In.BREAK:
            out.append(BreakStatus(fields["break"]))
        if fields.get("purge") and wanted & In.PURGE_TX_IN:
            out.append(PurgeTxIn())
    return out


# ---- the port -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Everything one port needs, fixed at start-up."""

    url: MqttUrl
    role: Role = Role.DEVICE
    client_id: str = ""
    qos: int = 0
    keepalive_s: int = 30
    backoff_s: tuple[float, float] = (0.5, 30.0)
    frame: Frame = Frame.LINE
    frame_bytes: int = 4096
    frame_delay_s: float = 0.01
    write_limit: int = DEFAULT_WRITE_LIMIT
    tls: ssl.SSLContext | None = None


@dataclass(slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    retain: bool = False


class _Inbox(asyncio.Queue):  # type: ignore[type-arg]
    """aiomqtt's incoming queue, short-circuited: each message goes to the port at once.

    aiomqtt hands every message to ``queue.put_nowait`` from its socket read
    callback (its ``queue_type`` option picks the class). Its message iterator
    then costs a task and an asyncio.wait per message, slower than paho reads
    them: a burst piled up in the queue. Delivering at once keeps nothing queued
    and costs nothing per message beyond the hub's own work.
    """

    def __init__(self, deliver: Callable[[Any], None], maxsize: int = 0):
        super().__init__(maxsize)
        self._deliver = deliver

    def put_nowait(self, item: Any) -> None:
        self._deliver(item)


_PROVIDES = {
    Role.DEVICE: In.CTS | In.DSR | In.RBR | In.RLC | In.BREAK | In.PURGE_TX_IN,
    Role.CLIENT: In.LBR | In.LLC | In.MODEM,
}
_ACCEPTS = {
    Role.DEVICE: Out.MODEM | Out.SET_BR | Out.SET_LC,
    Role.CLIENT: Out.DTR | Out.RTS | Out.BREAK | Out.SET_BR | Out.SET_LC | Out.PURGE_TX,
}


class MqttPort(Port):
    """One topic prefix on one broker, as the device side or a client."""

    def __init__(self, hub: HubLink, index: int, settings: MqttSettings, mqtt: Any):
        super().__init__(hub, index, f"MQTT({index})", settings.write_limit)
        self.settings = settings
        self.role = settings.role
        self.topics = Topics.of(settings.url.prefix)
        self.provides = _PROVIDES[self.role]
        self.accepts = _ACCEPTS[self.role]
        #: The aiomqtt module (imported by the driver).
        self._mqtt = mqtt
        self._framer = make_framer(settings.frame, settings.frame_bytes, settings.frame_delay_s)
        self._flush_timer: asyncio.TimerHandle | None = None
        self._queue: collections.deque[_Outgoing] = collections.deque()
        self._queued = 0
        self._inflight = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Received data held while the hub pauses our input.
        self._held: collections.deque[bytes] = collections.deque()
        self._held_bytes = 0
        #: Device: the state published (retained); client: the device's state last seen.
        self._state: dict[str, Any] = {}
        #: Client: the settings and pins requested so far (replayed when the device
        #: comes back); device: unused.
        self._known: dict[str, Any] = {}
        self._ctl_pending: dict[str, Any] = {}
        self._ctl_handle: asyncio.Handle | None = None
        self._state_dirty = False
        #: Client: the device hub's status as last seen (None: unknown).
        self.device_online: bool | None = None
        self.published = 0
        self.received = 0
        self.dropped_in = 0
        self.bad_ctl = 0
        self._last_error = ""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self.connected else "idle"
        read = "paused" if self.xoff_count else "on"
        return (
            f"<MqttPort {self.name} {self.settings.url} {self.role.value} {state} "
            f"read={read} queued={self.queued_bytes()}B>"
        )

    def status(self) -> str:
        where = f"{self.settings.url.broker} as {self.role.value} on {self.settings.url.prefix}"
        state = f"connected to {where}" if self.connected else f"not connected ({where})"
        if self.role is Role.CLIENT and self.device_online is not None:
            state += f", device {'online' if self.device_online else 'offline'}"
        dropped = f", {self.dropped_in} B dropped while paused" if self.dropped_in else ""
        return f"{state}, {self.published} published, {self.received} received{dropped}"

    def port_state(self) -> PortState:
        if self._closed:
            return PortState.CLOSED
        return PortState.CONNECTED if self.connected else PortState.CONNECTING

    def problem(self) -> str | None:
        if self._closed or self.connected:
            return None
        why = f": {self._last_error}" if self._last_error else ""
        return f"not connected to the broker {self.settings.url.broker}{why}"

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        url = self.settings.url
        snap["address"] = url.broker
        snap["role"] = self.role.value
        snap["topic_prefix"] = url.prefix
        snap["published"] = self.published
        snap["received"] = self.received
        snap["dropped_in"] = self.dropped_in
        snap["bad_ctl"] = self.bad_ctl
        snap["device_online"] = self.device_online
        if self.connected:
            snap["peers"] = [url.broker]
        return snap

    # ---- driver hooks ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._wake = asyncio.Event()
            self._task = self.hub.loop.create_task(self._run())

    def close(self) -> None:
        """Stop the connection task and timers; count what was never published. Never raises."""
        if self._closed:
            return
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._ctl_handle is not None:
            self._ctl_handle.cancel()
            self._ctl_handle = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self.lose(self._queued + self._inflight + self._framer.clear(), Drop.UNSENT)
        self._queue.clear()
        self._queued = self._inflight = 0
        self.connected = False

    def send_data(self, data: bytes) -> None:
        loop = self.hub.loop
        for payload in self._framer.feed(data, loop.time()):
            self._enqueue(_Outgoing(self._data_topic, payload))
        self._arm_flush()
        if self.queued_bytes() >= self.high_water:
            self.set_write_paused(True)

    def queued_bytes(self) -> int:
        return self._queued + self._inflight + self._framer.pending

    def pause_reading(self) -> None:
        """Nothing to pause at the broker: received data is held (bounded) instead."""

    def resume_reading(self) -> None:
        while self._held and not self.xoff_count:
            data = self._held.popleft()
            self._held_bytes -= len(data)
            self.received += 1
            self.emit_data(data)  # may pause us again

    def write_signal(self, msg: Message) -> None:
        fields = signal_fields(self.role, msg)
        if not fields:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s ignores %r", self.name, msg)
            return
        if self.role is Role.CLIENT:
            self._request(fields)
        else:
            changed = {k: v for k, v in fields.items() if self._state.get(k) != v}
            if changed:
                self._state.update(changed)
                self._state_dirty = True
                self._schedule_ctl()

    # ---- outgoing --------------------------------------------------------------------

    @property
    def _data_topic(self) -> str:
        return self.topics.data_out(self.role)

    def _enqueue(self, item: _Outgoing) -> None:
        self._queue.append(item)
        self._queued += len(item.payload)
        if self._wake is not None:
            self._wake.set()

    def _arm_flush(self) -> None:
        deadline = self._framer.deadline
        if deadline is None or self._flush_timer is not None or self._closed:
            return
        self._flush_timer = self.hub.loop.call_at(deadline, self._on_flush_timer)

    def _on_flush_timer(self) -> None:
        self._flush_timer = None
        for payload in self._framer.due(self.hub.loop.time()):
            self._enqueue(_Outgoing(self._data_topic, payload))
        self._arm_flush()

    def _request(self, fields: dict[str, Any]) -> None:
        """Client: queue the fields that change what was requested before."""
        new = {k: v for k, v in fields.items() if k == "purge" or self._known.get(k) != v}
        if not new:
            return
        self._known.update((k, v) for k, v in new.items() if k != "purge")
        if any(k in self._ctl_pending for k in new):
            self._flush_ctl()  # keep both values in order (a break pulse, say)
        self._ctl_pending.update(new)
        self._schedule_ctl()

    def _schedule_ctl(self) -> None:
        """Publish ctl changes once the current batch of messages is handled."""
        if self._ctl_handle is None and not self._closed:
            self._ctl_handle = self.hub.loop.call_soon(self._flush_ctl)

    def _flush_ctl(self) -> None:
        if self._ctl_handle is not None:
            self._ctl_handle.cancel()
            self._ctl_handle = None
        if self._ctl_pending:
            self._enqueue(_Outgoing(self.topics.ctl, encode_ctl(CtlKind.SET, self._ctl_pending)))
            self._ctl_pending = {}
        if self._state_dirty:
            self._state_dirty = False
            self._enqueue(_Outgoing(self.topics.ctl, encode_ctl(CtlKind.STATE, self._state), retain=True))

    def _written(self) -> None:
        if self.queued_bytes() <= self.low_water:
            self.set_write_paused(False)

    # ---- the connection ---------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        mqtt = self._mqtt
        client = mqtt.Client(
            s.url.host,
            s.url.port,
            username=s.url.username,
            password=s.url.password,
            identifier=s.client_id,
            logger=logging.getLogger(f"{__name__}.client"),
            will=mqtt.Will(self.topics.status, OFFLINE, 1, True) if self.role is Role.DEVICE else None,
            keepalive=s.keepalive_s,
            tls_context=s.tls,
            queue_type=functools.partial(_Inbox, self._on_message),  # type: ignore[arg-type]
        )
        client.pending_calls_threshold = PUBLISH_WINDOW + 4
        return client

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff until cancelled."""
        low, high = self.settings.backoff_s
        delay = low
        while not self._closed:
            try:
                async with self._client() as client:
                    delay = low
                    await self._session(client)
            except self._mqtt.MqttError as exc:
                self._report(exc, delay)
            except OSError as exc:
                self._report(exc, delay)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: report it, then retry like a lost connection
                log.exception("%s: unexpected error; reconnecting in %g s", self.name, delay)
            finally:
                self._session_ended()
            await asyncio.sleep(delay)
            delay = min(delay * 2, high)

    def _report(self, exc: BaseException, delay: float) -> None:
        reason = str(exc) or type(exc).__name__
        broker = self.settings.url.broker
        if self.connected:
            log.warning("%s: lost the broker %s: %s; reconnecting in %g s", self.name, broker, reason, delay)
        elif reason != self._last_error:
            log.warning("%s: cannot connect to %s: %s; retrying in %g s", self.name, broker, reason, delay)
        else:
            log.debug("%s: still cannot connect to %s: %s", self.name, broker, reason)
        self._last_error = reason

    async def _session(self, client: aiomqtt.Client) -> None:
        qos = self.settings.qos
        await client.subscribe([(t, qos) for t in self.topics.subscriptions(self.role)])
        if self.role is Role.DEVICE:
            await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
            if self._state:
                self._state_dirty = True
                self._schedule_ctl()
        self._last_error = ""
        url = self.settings.url
        log.info("%s: %s on %s as %s", self.name, url.broker, url.prefix, self.role.value)
        self.set_connected(True)
        loop = self.hub.loop
        reader = loop.create_task(self._read(client))
        pump = loop.create_task(self._pump(client))
        try:
            done, _ = await asyncio.wait((reader, pump), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
        finally:
            reader.cancel()
            pump.cancel()
            await asyncio.gather(reader, pump, return_exceptions=True)
            if self.role is Role.DEVICE:
                await self._say_offline(client)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Publish "offline" before aiomqtt's DISCONNECT (which cancels the will).

        If the loop stops before either goes out, the connection just closes and
        the broker publishes the will instead.
        """
        try:
            await client.publish(self.topics.status, OFFLINE, qos=1, retain=True, timeout=_OFFLINE_TIMEOUT_S)
        except self._mqtt.MqttError as exc:
            log.debug("%s: could not publish offline: %s", self.name, exc)

    def _session_ended(self) -> None:
        self._state_known_reset()
        self.set_connected(False)

    def _state_known_reset(self) -> None:
        if self.role is Role.CLIENT:
            self._state = {}  # report the device's state in full after reconnecting
            self.device_online = None

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Publish the queue in order, PUBLISH_WINDOW at a time. Raises MqttError."""
        assert self._wake is not None
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        failed: list[BaseException] = []
        tasks: set[asyncio.Task[None]] = set()
        qos = self.settings.qos
        loop = self.hub.loop

        def done(task: asyncio.Task[None], size: int) -> None:
            tasks.discard(task)
            window.release()
            if self._closed:
                return  # close() counted what was in flight
            self._inflight -= size
            exc = None if task.cancelled() else task.exception()
            if task.cancelled() or exc is not None:
                self.lose(size, Drop.UNSENT)  # it may or may not have reached the broker
                if exc is not None:
                    failed.append(exc)
                    self._wake.set()  # type: ignore[union-attr]
                return
            self.published += 1
            self._written()

        try:
            while True:
                while not self._queue:
                    if failed:
                        raise failed[0]
                    self._wake.clear()
                    await self._wake.wait()
                if failed:
                    raise failed[0]
                await window.acquire()
                if not self._queue:
                    window.release()
                    continue
                item = self._queue.popleft()
                size = len(item.payload)
                self._queued -= size
                self._inflight += size
                task = loop.create_task(client.publish(item.topic, item.payload, qos=qos, retain=item.retain))
                tasks.add(task)
                task.add_done_callback(functools.partial(done, size=size))
        finally:
            for task in list(tasks):
                task.cancel()

    async def _read(self, client: aiomqtt.Client) -> None:
        """Wait until the connection ends; raises MqttError then.

        Messages never wait in aiomqtt's queue (see _Inbox): this only watches
        for the disconnect, which ends aiomqtt's message iterator.
        """
        async for m in client.messages:
            self._on_message(m)  # only if something bypassed the inbox

    def _on_message(self, m: aiomqtt.Message) -> None:
        """One message received (called from the socket's read callback)."""
        topic = m.topic.value
        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload or "").encode()
        if topic == self.topics.data_in(self.role):
            if payload and not m.retain:
                self._data_in(payload)
        elif topic == self.topics.ctl:
            self._ctl_in(payload)
        elif topic == self.topics.status:
            self._status_in(payload)

    # ---- incoming ---------------------------------------------------------------------

    def _data_in(self, data: bytes) -> None:
        if not self.xoff_count:
            self.received += 1
            self.emit_data(data)
            return
        if self._held_bytes + len(data) > HOLD_LIMIT_BYTES:
            if not self.dropped_in:
                log.warning(
                    "%s: input paused and %d bytes held; dropping what arrives", self.name, HOLD_LIMIT_BYTES
                )
            self.dropped_in += len(data)
            return
        self._held.append(data)
        self._held_bytes += len(data)

    def _ctl_in(self, payload: bytes) -> None:
        if not payload:
            return
        try:
            kind, fields = decode_ctl(payload)
        except CtlError as exc:
            self.bad_ctl += 1
            log.warning("%s: ignoring a bad ctl message on %s: %s", self.name, self.topics.ctl, exc)
            return
        if self.role is Role.DEVICE:
            if kind is not CtlKind.SET:
                return  # our own state, or another device hub's
            msgs = field_messages(self.role, fields, self.wanted)
        else:
            if kind is not CtlKind.STATE:
                return  # requests of clients (ours or other hubs')
            changed = {k: v for k, v in fields.items() if self._state.get(k) != v}
            self._state.update(changed)
            msgs = field_messages(self.role, changed, self.wanted)
        if msgs:
            self.emit(msgs)

    def _status_in(self, payload: bytes) -> None:
        text = payload.strip().lower()
        if text not in (ONLINE, OFFLINE):
            log.debug("%s: unknown status %s", self.name, peer_text(payload))
            return
        online = text == ONLINE
        if online == self.device_online:
            return
        before, self.device_online = self.device_online, online
        log.info("%s: the device hub on %s is %s", self.name, self.settings.url.prefix, text.decode())
        if online and before is not None and self._known:
            # The device hub came back: it lost what was requested before.
            self._ctl_pending.update(self._known)
            self._schedule_ctl()


# ---- the driver ------------------------------------------------------------------------


def _import_aiomqtt() -> Any:
    """The aiomqtt module. Raises UsageError with MISSING_AIOMQTT if it is not installed."""
    try:
        import aiomqtt
    except ImportError:
        raise UsageError(None, MISSING_AIOMQTT) from None
    return aiomqtt


def _word(name: str, words: type[enum.Enum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        v = str(value).strip().lower()
        for member in words:
            if v and member.value.startswith(v):
                return member
        raise UsageError(None, f"Invalid {name} value (expected {' or '.join(m.value for m in words)})")

    return convert


def _int_range(name: str, low: int, high: int, unit: str = "") -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise UsageError(None, f"Invalid {name} value ({low} to {high}{unit})")
        return int(text)

    return convert


def _backoff(value: Any) -> tuple[float, float]:
    text = str(value).strip()
    low_text, sep, high_text = text.partition(",")
    try:
        low = int(low_text)
        high = int(high_text) if sep else max(low, 30_000)
    except ValueError:
        low = high = -1
    if not 10 <= low <= high <= 3_600_000:
        raise UsageError(None, "Invalid --backoff value (<min>[,<max>] ms, 10 <= min <= max)")
    return low / 1000, high / 1000


def _text(value: Any) -> str:
    return str(value).strip()


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "--role": _word("--role", Role),
    "--client-id": _text,
    "--qos": _int_range("--qos", 0, 1),
    "--keepalive": _int_range("--keepalive", 1, 65535, " s"),
    "--tls-ca": _text,
    "--tls-cert": _text,
    "--tls-key": _text,
    "--backoff": _backoff,
    "--frame": _word("--frame", Frame),
    "--frame-bytes": _int_range("--frame-bytes", 1, 1 << 20, " bytes"),
    "--frame-delay": _int_range("--frame-delay", 0, 10_000, " ms"),
    "--write-limit": _int_range("--write-limit", 0, 1 << 40, " bytes"),
}


def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """A client TLS context: verify the broker by `ca` (or the system's CAs).

    Raises UsageError naming the option whose file cannot be used.
    """
    try:
        ctx = ssl.create_default_context(cafile=ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-ca={ca}", f"Cannot use the CA file: {_tls_reason(exc)}") from None
    if cert:
        try:
            ctx.load_cert_chain(cert, key or None)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"--tls-cert={cert}", f"Cannot use the certificate or key: {_tls_reason(exc)}"
            ) from None
    return ctx


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class MqttDriver(Driver):
    """Creates MQTT ports: a topic prefix on a broker, as the device side or a client."""

    NAME = "mqtt"
    DESCRIPTION = "MQTT broker driver (one device, any number of hubs)"
    USAGE = USAGE
    DEFAULTS = {
        "--role": Role.DEVICE,
        "--client-id": "",
        "--qos": 0,
        "--keepalive": 30,
        "--tls-ca": "",
        "--tls-cert": "",
        "--tls-key": "",
        "--backoff": (0.5, 30.0),
        "--frame": Frame.LINE,
        "--frame-bytes": 4096,
        "--frame-delay": 10,
        "--write-limit": DEFAULT_WRITE_LIMIT,
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._client_ids: set[str] = set()

    def convert_option(self, name: str, value: Any) -> Any:
        """Validate one option value; return it typed. Raises UsageError."""
        conv = _CONVERTERS.get(name)
        return value if conv is None else conv(value)

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> MqttPort:
        """An MQTT port for URL `path`. Raises UsageError for a bad URL, option or
        TLS file, or when aiomqtt is missing."""
        url = parse_url(path)
        mqtt = _import_aiomqtt()
        ca, cert, key = options["--tls-ca"], options["--tls-cert"], options["--tls-key"]
        if url.tls:
            tls = tls_context(ca, cert, key)
        elif ca or cert or key:
            raise UsageError(path, "TLS options given for an mqtt:// URL (use mqtts://)")
        else:
            tls = None
        client_id = options["--client-id"] or f"hub4com-{secrets.token_hex(6)}"
        if client_id in self._client_ids:
            raise UsageError(
                path, f"Another mqtt port already uses client id {client_id} (give each its own)"
            )
        self._client_ids.add(client_id)
        settings = MqttSettings(
            url=url,
            role=options["--role"],
            client_id=client_id,
            qos=options["--qos"],
            keepalive_s=options["--keepalive"],
            backoff_s=options["--backoff"],
            frame=options["--frame"],
            frame_bytes=options["--frame-bytes"],
            frame_delay_s=options["--frame-delay"] / 1000,
            write_limit=options["--write-limit"],
            tls=tls,
        )
        return MqttPort(self.hub, index, settings, mqtt)
