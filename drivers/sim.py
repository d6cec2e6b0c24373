"""Usage: sim [options]

Ports of the sim driver are simulated devices, for trying the hub without
hardware and for tests. The port path says what to simulate:

  gps            A GPS receiver sending NMEA 0183 (talker GP). Every epoch it
                 sends GGA, RMC, GSA, GSV (as many as the satellites need) and
                 VTG in one chunk, CR LF terminated, with valid checksums. It
                 moves at a steady speed on a slowly turning course. The time
                 is UTC from the system clock, on whole epochs (at 10 Hz:
                 .00, .10, .20 ...). While the hub holds its input (flow
                 control) epochs are skipped, as a receiver would drop them.
  replay:<file>  Replay a captured log at its original pace, in one of the
                 two formats below. The file is read when the port is created.

What applications write to a simulated device is counted and ignored, and so
are baud rate and line control changes.

Options:
  --rate=<hz>           GPS epochs per second, more than 0 and up to 50.
                        Default 1.
  --start=<lat>,<lon>   GPS start position in decimal degrees, south and west
                        negative. Default 52.52,13.405.
  --speed-knots=<v>     GPS speed over ground in knots. Default 5.
  --seed=<n>            Seed of the GPS simulation: the same seed gives the same
                        satellites, track and noise. Default random.
  --loop                Replay: start again from the beginning at the end.
  --no-loop             Replay: stop at the end (the default).
  --replay-speed=<x>    Replay pace: 1 is the original pace, 10 ten times faster.
                        Default 1.

Replay formats. A plain log (NMEA, or any bytes) is sent line by line, lines
grouped by the UTC time in their RMC, GGA, GNS, GLL or ZDA sentences (any
talker, checksum valid or absent). Each group goes out as one chunk; when the
time changes, the next group follows after the difference divided by the
replay speed. Lines without a time go with the group before them. Lines
starting with # at the top of the file (a gpsfake header) are skipped.

A timestamped capture has one record per line, the bytes received at that
moment, for example "0.250 24475047474741...0d0a":

  <seconds since the start> <the bytes in hex>

The seconds are a decimal number that never decreases, then one or more
spaces, then an even number of hex digits. Empty lines and lines starting
with # are ignored. A file is read as a timestamped capture when its first
line that is not empty or a # comment has this form.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from hub.caps import Out
from hub.errors import UsageError
from hub.logs import peer_text
from hub.messages import Message
from hub.port import Driver, HubLink, Port, PortState

__all__ = [
    "GpsSimPort",
    "GpsSimulator",
    "ReplayPort",
    "SimDriver",
    "SimPort",
    "format_record",
    "nmea_checksum",
    "nmea_sentence",
    "parse_capture",
]

log = logging.getLogger(__name__)

#: The usage text (this module's docstring): parses the sticky options, printed by --help=sim.
USAGE = __doc__ or ""

#: Upper bound of --rate (epochs per second).
MAX_RATE_HZ = 50.0
#: A replay file larger than this is refused (it is read into memory).
MAX_REPLAY_BYTES = 256 * 1024 * 1024
#: Replay chunks are at most this long; a longer group is sent in pieces.
MAX_CHUNK_BYTES = 64 * 1024
#: Pause before a looped replay starts again when the log gives no interval.
DEFAULT_LOOP_GAP_S = 1.0

_KNOT_M_S = 1852.0 / 3600.0
_EARTH_RADIUS_M = 6_371_000.0
_SECONDS_PER_DAY = 86_400


# ---- NMEA 0183 helpers ---------------------------------------------------------


def nmea_checksum(body: str) -> str:
    """The checksum of a sentence body (between '$' and '*'), as two upper-case hex digits."""
    cs = 0
    for b in body.encode("ascii"):
        cs ^= b
    return f"{cs:02X}"


def nmea_sentence(body: str) -> bytes:
    """A complete sentence: '$' + body + '*' + checksum + CR LF."""
    return f"${body}*{nmea_checksum(body)}\r\n".encode("ascii")


def _lat_lon_fields(value_deg: float, deg_digits: int, pos: str, neg: str) -> tuple[str, str]:
    """NMEA (d)ddmm.mmmm and hemisphere. Integer arithmetic, so minutes never print as 60."""
    units = round(abs(value_deg) * 600_000)  # 1e-4 minutes
    deg, rem = divmod(units, 600_000)
    minutes, frac = divmod(rem, 10_000)
    return f"{deg:0{deg_digits}d}{minutes:02d}.{frac:04d}", (neg if value_deg < 0 else pos)


def _utc_fields(t: float) -> tuple[str, str]:
    """(hhmmss.ss, ddmmyy) of a Unix time in seconds."""
    centis = round(t * 100)
    secs, cs = divmod(centis, 100)
    tm = time.gmtime(secs)
    return (
        f"{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{cs:02d}",
        f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d}",
    )


@dataclass(frozen=True, slots=True)
class _Satellite:
    """One simulated satellite; its sky position is a slow function of time."""

    prn: int
    elev_mid_deg: float
    elev_amp_deg: float
    phase: float
    az0_deg: float
    az_rate_dps: float

    #: Elevation swings over about six hours (GPS orbits take twelve).
    ELEV_OMEGA = 2 * math.pi / (6 * 3600)

    def elevation(self, t: float) -> float:
        return self.elev_mid_deg + self.elev_amp_deg * math.sin(self.phase + self.ELEV_OMEGA * t)

    def azimuth(self, t: float) -> float:
        return (self.az0_deg + self.az_rate_dps * t) % 360.0


class GpsSimulator:
    """A GPS receiver as a sans-IO object: `epoch(t)` returns the sentences of one epoch.

    No clock and no loop: the caller says what time it is. The position moves
    by `speed_knots` along `course_deg` for the time since the previous epoch;
    the course turns slowly at a random rate. Everything random comes from
    one `random.Random(seed)`, so the same seed and the same times give the
    same bytes.
    """

    def __init__(
        self,
        lat_deg: float = 52.52,
        lon_deg: float = 13.405,
        speed_knots: float = 5.0,
        *,
        seed: int | None = None,
        course_deg: float | None = None,
        talker: str = "GP",
    ):
        self._rng = random.Random(seed)
        self.lat_deg = lat_deg
        self.lon_deg = lon_deg
        self.speed_knots = speed_knots
        self.course_deg = self._rng.uniform(0.0, 360.0) if course_deg is None else course_deg % 360.0
        self.talker = talker
        self.alt_m = self._rng.uniform(20.0, 120.0)
        self.geoid_sep_m = round(self._rng.uniform(-30.0, 50.0), 1)
        self._turn_dps = 0.0
        self._last_t: float | None = None
        prns = sorted(self._rng.sample(range(1, 33), self._rng.randint(8, 12)))
        sats = []
        for prn in prns:
            mid = self._rng.uniform(25.0, 60.0)
            sats.append(
                _Satellite(
                    prn=prn,
                    elev_mid_deg=mid,
                    elev_amp_deg=self._rng.uniform(0.0, mid - 8.0),
                    phase=self._rng.uniform(0.0, 2 * math.pi),
                    az0_deg=self._rng.uniform(0.0, 360.0),
                    az_rate_dps=self._rng.uniform(-0.01, 0.01),
                )
            )
        self.satellites: tuple[_Satellite, ...] = tuple(sats)

    def __repr__(self) -> str:
        return (
            f"<GpsSimulator {self.lat_deg:.6f},{self.lon_deg:.6f} "
            f"{self.speed_knots:g}kn {self.course_deg:.1f}deg>"
        )

    # ---- motion -------------------------------------------------------------

    def advance(self, dt_s: float) -> None:
        """Move along the course for `dt_s` seconds and let the course drift."""
        if dt_s <= 0:
            return
        rng = self._rng
        step = min(dt_s, 5.0)
        # a turn rate that wanders and decays: at most 3 degrees a second
        self._turn_dps += rng.gauss(0.0, 0.4) * math.sqrt(step) - 0.1 * self._turn_dps * step
        self._turn_dps = max(-3.0, min(3.0, self._turn_dps))
        course_mid = math.radians(self.course_deg + self._turn_dps * dt_s / 2)
        dist_m = self.speed_knots * _KNOT_M_S * dt_s
        lat = math.radians(self.lat_deg)
        self.lat_deg += math.degrees(dist_m * math.cos(course_mid) / _EARTH_RADIUS_M)
        self.lat_deg = max(-89.9, min(89.9, self.lat_deg))
        self.lon_deg += math.degrees(dist_m * math.sin(course_mid) / (_EARTH_RADIUS_M * math.cos(lat)))
        self.lon_deg = (self.lon_deg + 180.0) % 360.0 - 180.0
        self.course_deg = (self.course_deg + self._turn_dps * dt_s) % 360.0
        self.alt_m += rng.gauss(0.0, 0.05) * math.sqrt(step)

    # ---- sentences ----------------------------------------------------------

    def epoch(self, t: float) -> bytes:
        """Advance to Unix time `t` (seconds, UTC) and return that epoch's sentences.

        Returns GGA, RMC, GSA, the GSV sentences and VTG, each '$...*HH' CR LF,
        joined into one bytes object.
        """
        if self._last_t is not None:
            self.advance(t - self._last_t)
        self._last_t = t
        rng = self._rng
        hms, date = _utc_fields(t)
        lat, ns = _lat_lon_fields(self.lat_deg, 2, "N", "S")
        lon, ew = _lat_lon_fields(self.lon_deg, 3, "E", "W")

        in_view = []
        for sat in self.satellites:
            elev = sat.elevation(t)
            snr = round(max(12.0, min(50.0, 27.0 + 0.25 * elev + rng.gauss(0.0, 1.5))))
            in_view.append((sat.prn, round(elev), round(sat.azimuth(t)) % 360, snr))
        used = [s for s in in_view if s[1] >= 10 and s[3] >= 28]
        if len(used) < 4:
            used = sorted(in_view, key=lambda s: -s[3])[:4]
        used = sorted(used)[:12]
        hdop = max(0.5, round(0.6 + 5.0 / len(used) + rng.gauss(0.0, 0.05), 1))
        pdop = round(hdop * 1.7, 1)
        vdop = round(math.sqrt(pdop * pdop - hdop * hdop), 1)

        sog = max(0.0, self.speed_knots + rng.gauss(0.0, 0.03)) if self.speed_knots > 0 else 0.0
        cog = self.course_deg
        tk = self.talker
        bodies = [
            f"{tk}GGA,{hms},{lat},{ns},{lon},{ew},1,{len(used):02d},{hdop:.1f},"
            f"{self.alt_m:.1f},M,{self.geoid_sep_m:.1f},M,,",
            f"{tk}RMC,{hms},A,{lat},{ns},{lon},{ew},{sog:.2f},{cog:.1f},{date},,,A",
            f"{tk}GSA,A,3,"
            + ",".join([f"{s[0]:02d}" for s in used] + [""] * (12 - len(used)))
            + f",{pdop:.1f},{hdop:.1f},{vdop:.1f}",
        ]
        total = max(1, math.ceil(len(in_view) / 4))
        for i in range(total):
            group = in_view[4 * i : 4 * i + 4]
            sats = "".join(f",{prn:02d},{el:02d},{az:03d},{snr:02d}" for prn, el, az, snr in group)
            bodies.append(f"{tk}GSV,{total},{i + 1},{len(in_view):02d}{sats}")
        bodies.append(f"{tk}VTG,{cog:.1f},T,,M,{sog:.2f},N,{sog * 1.852:.2f},K,A")
        return b"".join(nmea_sentence(b) for b in bodies)


# ---- replay logs ----------------------------------------------------------------

#: Sentence type -> index of its UTC time field (the address is field 0).
_TIME_FIELD = {b"RMC": 1, b"GGA": 1, b"GNS": 1, b"ZDA": 1, b"GLL": 5}
_TIME_RE = re.compile(rb"(\d\d)(\d\d)(\d\d(?:\.\d*)?)\Z")
_RECORD_RE = re.compile(rb"\s*(\d+(?:\.\d*)?|\.\d+)[ \t]+([0-9A-Fa-f]*)\s*\Z")


def format_record(t_s: float, data: bytes) -> bytes:
    """One line of the timestamped capture format: seconds since the start, then the bytes in hex."""
    return b"%.6f %s\n" % (t_s, data.hex().encode("ascii"))


def _sentence_time(line: bytes) -> float | None:
    """Seconds of the day in an RMC/GGA/GNS/GLL/ZDA sentence, or None.

    A sentence with a wrong checksum gives no time (it does not pace the replay).
    """
    line = line.rstrip(b"\r\n")
    if len(line) < 7 or line[:1] != b"$":
        return None
    index = _TIME_FIELD.get(line[3:6])
    if index is None:
        return None
    body, star, cs = line[1:].partition(b"*")
    if star:
        x = 0
        for b in body:  # one short sentence, only while loading a log
            x ^= b
        if cs[:2].upper() != b"%02X" % x:
            return None
    fields = body.split(b",")
    if len(fields) <= index:
        return None
    m = _TIME_RE.match(fields[index])
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _time_step(prev: float, new: float) -> float:
    """Seconds from one sentence time to the next, across midnight; 0 if time went back."""
    d = new - prev
    if d < -_SECONDS_PER_DAY / 2:
        d += _SECONDS_PER_DAY
    return max(0.0, d)


def _skip_header(lines: list[bytes]) -> int:
    i = 0
    while i < len(lines) and lines[i].startswith(b"#"):
        i += 1
    return i


def _parse_plain(lines: list[bytes]) -> list[tuple[float, bytes]]:
    groups: list[tuple[float, list[bytes]]] = []
    offset = 0.0
    current: float | None = None
    for line in lines[_skip_header(lines) :]:
        t = _sentence_time(line)
        if t is not None and current is None:
            current = t  # the first time seen: the lines before it join this group
        elif t is not None and t != current:
            assert current is not None
            offset += _time_step(current, t)
            current = t
            groups.append((offset, []))
        if not groups:
            groups.append((offset, []))
        groups[-1][1].append(line)
    records = []
    for at, group in groups:
        chunk = b"".join(group)
        for i in range(0, len(chunk), MAX_CHUNK_BYTES):
            records.append((at, chunk[i : i + MAX_CHUNK_BYTES]))
    return records


def _parse_timestamped(lines: list[bytes]) -> list[tuple[float, bytes]]:
    records = []
    last = 0.0
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(b"#"):
            continue
        m = _RECORD_RE.match(line)
        if m is None or len(m.group(2)) % 2:
            raise ValueError(f"line {n} is not '<seconds> <hex bytes>'")
        at = float(m.group(1))
        if at < last:
            raise ValueError(f"line {n}: the time goes back from {last:g} to {at:g}")
        last = at
        if m.group(2):
            records.append((at, bytes.fromhex(m.group(2).decode("ascii"))))
    return records


def parse_capture(data: bytes) -> tuple[list[tuple[float, bytes]], bool]:
    """Turn a replay log into records to send: ([(seconds since start, bytes)], timestamped).

    Times never decrease. A plain log's bytes come back unchanged and in
    order (less a leading # header); a timestamped capture gives one record
    per line. Raises ValueError naming the line if a timestamped capture is
    malformed.
    """
    lines = data.splitlines(keepends=True)
    for line in lines:
        if line.strip() and not line.startswith(b"#"):
            if _RECORD_RE.match(line):
                return _parse_timestamped(lines), True
            break
    return _parse_plain(lines), False


def _cycle_s(records: list[tuple[float, bytes]]) -> float:
    """Length of one pass of a looped replay: the log, then its last interval again."""
    times = sorted({at for at, _ in records})
    if not times:
        return DEFAULT_LOOP_GAP_S
    gap = times[-1] - times[-2] if len(times) > 1 else DEFAULT_LOOP_GAP_S
    return times[-1] + (gap if gap > 0 else DEFAULT_LOOP_GAP_S)


# ---- ports ------------------------------------------------------------------------


class SimPort(Port):
    """Base of the simulated devices: accepts and ignores writes and settings, owns one timer."""

    accepts = Out.SET_BR | Out.SET_LC | Out.PURGE_TX

    def __init__(self, hub: HubLink, index: int, name: str):
        super().__init__(hub, index, name)
        self._timer: Any = None  # asyncio.TimerHandle
        self._paused = False
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self.connected else "idle"
        read = "paused" if self._paused else "on"
        return f"<{type(self).__name__} {self.name} {state} read={read} {self.status()}>"

    def port_state(self) -> PortState:
        if self._closed:
            return PortState.CLOSED
        return PortState.CONNECTED if self._started else PortState.WAITING

    def start(self) -> None:
        self._started = True
        self.set_connected(True)
        if not self._paused:
            self._run()

    def close(self) -> None:
        self._closed = True
        self._cancel()

    def send_data(self, data: bytes) -> None:
        # bytes_out was counted by Port.write_data; a simulated device has no use for them.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s ignores %d bytes written: %s", self.name, len(data), peer_text(data))

    def write_signal(self, msg: Message) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s ignores %r", self.name, msg)

    def pause_reading(self) -> None:
        if self._paused:
            return
        self._paused = True
        self._cancel()
        self._on_pause()

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._started and not self._closed:
            self._run()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _call_at(self, when: float, callback: Any) -> None:
        self._cancel()
        self._timer = self.hub.loop.call_at(when, callback)

    def _active(self) -> bool:
        return self._started and not self._paused and not self._closed

    # ---- for subclasses --------------------------------------------------------

    def _run(self) -> None:
        """(Re)start the generator; called by start() and resume_reading()."""
        raise NotImplementedError

    def _on_pause(self) -> None:
        """The hub paused the input; the timer is already cancelled."""


class GpsSimPort(SimPort):
    """A simulated GPS receiver: one GpsSimulator epoch per timer tick.

    Epoch k is due at Unix time k / rate, mapped onto the loop clock once at
    start, so the schedule never drifts and the time fields fall on whole
    epochs (a later step of the system clock does not move them). Epochs
    that pass while the input is paused, or while the loop was too busy to
    send them, are skipped and counted in `skipped`.
    """

    def __init__(self, hub: HubLink, index: int, options: dict[str, Any]):
        super().__init__(hub, index, f"sim-gps({index})")
        lat, lon = options["--start"]
        self.rate_hz: float = options["--rate"]
        self.sim = GpsSimulator(lat, lon, options["--speed-knots"], seed=options["--seed"])
        self.epochs = 0
        self.skipped = 0
        self._next_k: int | None = None
        self._wall_minus_loop = 0.0

    def status(self) -> str:
        return f"{self.epochs} epochs sent, {self.skipped} skipped"

    def _wall(self, loop_time: float) -> float:
        return loop_time + self._wall_minus_loop

    def _due(self, k: int) -> float:
        return k / self.rate_hz - self._wall_minus_loop

    def _run(self) -> None:
        loop = self.hub.loop
        if self._next_k is None:
            self._wall_minus_loop = time.time() - loop.time()
        k = math.floor(self._wall(loop.time()) * self.rate_hz) + 1
        if self._next_k is not None and k > self._next_k:
            self.skipped += k - self._next_k
        self._next_k = k if self._next_k is None else max(k, self._next_k)
        self._call_at(self._due(self._next_k), self._on_epoch)

    def _on_epoch(self) -> None:
        self._timer = None
        if not self._active() or self._next_k is None:
            return
        k = self._next_k
        late = math.floor((self.hub.loop.time() - self._due(k)) * self.rate_hz)
        if late > 0:  # the loop was blocked: send the current epoch, not a backlog
            self.skipped += late
            k += late
        self._next_k = k + 1
        data = self.sim.epoch(k / self.rate_hz)
        self.epochs += 1
        self.emit_data(data)  # may pause us (flow control) or close us
        if self._active():
            self._call_at(self._due(self._next_k), self._on_epoch)


class ReplayPort(SimPort):
    """Replays records (seconds since start, bytes) at their pace divided by `replay_speed`.

    Record i is due at base + t_i / speed on the loop clock; a pause moves the
    base on by its length, so the rest of the log keeps its pace and nothing
    is dropped.
    """

    def __init__(
        self,
        hub: HubLink,
        index: int,
        path: str,
        records: list[tuple[float, bytes]],
        options: dict[str, Any],
    ):
        super().__init__(hub, index, f"sim-replay({index})")
        self.path = path
        self.records = records
        self.speed: float = options["--replay-speed"]
        self.loop_replay: bool = bool(options["--loop"])
        self.cycle_s = _cycle_s(records)
        self.passes = 0
        self.finished = not records
        self._i = 0
        self._base: float | None = None
        self._paused_at = 0.0

    def status(self) -> str:
        done = "finished" if self.finished else f"record {self._i} of {len(self.records)}"
        return f"{done}, {self.passes} passes"

    def _due(self, i: int) -> float:
        assert self._base is not None
        return self._base + self.records[i][0] / self.speed

    def _on_pause(self) -> None:
        self._paused_at = self.hub.loop.time()

    def _run(self) -> None:
        now = self.hub.loop.time()
        if self._base is None:
            self._base = now
        else:
            self._base += now - self._paused_at
        self._schedule()

    def _schedule(self) -> None:
        if self.finished:
            return
        self._call_at(self._due(self._i), self._on_record)

    def _on_record(self) -> None:
        self._timer = None
        loop = self.hub.loop
        while self._active() and not self.finished:
            if self._due(self._i) > loop.time():
                self._schedule()
                return
            data = self.records[self._i][1]
            self._i += 1
            if self._i == len(self.records):
                self._end_of_pass()
            self.emit_data(data)  # may pause us (flow control) or close us

    def _end_of_pass(self) -> None:
        self.passes += 1
        if self.loop_replay:
            assert self._base is not None
            self._i = 0
            self._base += self.cycle_s / self.speed
        else:
            self.finished = True
            log.info("%s: end of %s (%d records)", self.name, self.path, len(self.records))


# ---- the driver ---------------------------------------------------------------------


class SimDriver(Driver):
    """Creates simulated devices: `gps` and `replay:<file>`."""

    NAME = "sim"
    DESCRIPTION = "Simulated device driver (GPS receiver, log replay)"
    USAGE = USAGE
    DEFAULTS = {
        "--rate": 1.0,
        "--start": (52.52, 13.405),
        "--speed-knots": 5.0,
        "--seed": None,
        "--loop": False,
        "--replay-speed": 1.0,
    }

    def config_arg(self, arg: str) -> bool:
        if not super().config_arg(arg):
            return False
        if self.options.pop("--no-loop", False):
            self.options["--loop"] = False
        return True

    def convert_option(self, name: str, value: Any) -> Any:
        conv = _CONVERTERS.get(name)
        return value if conv is None else conv(value)

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> Port:
        kind, sep, rest = path.partition(":")
        kind = kind.lower()
        if kind == "gps" and not sep:
            return GpsSimPort(self.hub, index, options)
        if kind == "replay" and sep:
            if not rest:
                raise UsageError(path, "Missing file name (use replay:<file>)")
            return ReplayPort(self.hub, index, rest, _load_replay(path, rest), options)
        raise UsageError(path, "Unknown simulated device (use gps or replay:<file>)")


def _load_replay(arg: str, filename: str) -> list[tuple[float, bytes]]:
    """Read and parse a replay file; raise UsageError naming `arg` if that fails."""
    try:
        with open(filename, "rb") as f:
            data = f.read(MAX_REPLAY_BYTES + 1)
    except OSError as exc:
        raise UsageError(arg, f"Can't read the replay file ({exc.strerror or exc})") from None
    if len(data) > MAX_REPLAY_BYTES:
        raise UsageError(arg, f"The replay file is larger than {MAX_REPLAY_BYTES >> 20} MiB")
    try:
        records, _ = parse_capture(data)
    except ValueError as exc:
        raise UsageError(arg, f"Bad timestamped capture: {exc}") from None
    if not records:
        raise UsageError(arg, "Nothing to replay in the file")
    return records


def _positive_float(name: str, what: str, high: float) -> Any:
    def convert(value: Any) -> float:
        try:
            x = float(value)
        except ValueError:
            x = math.nan
        if not (0 < x <= high):  # also refuses nan
            raise UsageError(None, f"Invalid {name} value ({what})")
        return x

    return convert


def _start(value: Any) -> tuple[float, float]:
    try:
        lat_s, lon_s = str(value).split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        lat = lon = math.nan
    if not (-90 < lat < 90 and -180 <= lon <= 180):
        raise UsageError(None, "Invalid --start value (<lat>,<lon> in decimal degrees)")
    return lat, lon


def _speed_knots(value: Any) -> float:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (0 <= x <= 2000):
        raise UsageError(None, "Invalid --speed-knots value (0 to 2000)")
    return x


def _seed(value: Any) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(None, "Invalid --seed value (an integer)") from None


_CONVERTERS = {
    "--rate": _positive_float(
        "--rate", f"epochs per second, more than 0 and up to {MAX_RATE_HZ:g}", MAX_RATE_HZ
    ),
    "--start": _start,
    "--speed-knots": _speed_knots,
    "--seed": _seed,
    "--replay-speed": _positive_float("--replay-speed", "a factor more than 0, 1 = original pace", 1e6),
}
