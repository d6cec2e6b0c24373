"""Tests of the sim driver: NMEA generation (sans-IO), replay parsing, and ports on a real loop."""

from __future__ import annotations

import asyncio
import datetime
import functools
import io
import itertools
import math
import operator
import pathlib
import time

import pytest

from drivers.sim import (
    GpsSimPort,
    GpsSimulator,
    ReplayPort,
    SimDriver,
    SimPort,
    format_record,
    nmea_checksum,
    nmea_sentence,
    parse_capture,
)
from hub.caps import Out
from hub.cli import build
from hub.errors import UsageError
from hub.main import print_module_help
from hub.messages import Connect, FlowControl, LineControl, LineData, SetBaud, SetLineControl
from hub.options import option_names
from hub.registry import DRIVERS, Registry

from .fakes import FakeDriver, _EPs

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC

# ---- an NMEA parser of our own (independent of the driver's code) ---------------

#: Field counts including the address field, NMEA 0183 2.3.
FIELD_COUNTS = {"GPGGA": 15, "GPRMC": 13, "GPGSA": 18, "GPVTG": 10}


def parse_line(line: bytes) -> list[str]:
    """Check framing and checksum of one sentence; return its fields (address first)."""
    assert line.endswith(b"\r\n"), line
    text = line[:-2].decode("ascii")
    assert text.startswith("$"), line
    body, star, cs = text[1:].rpartition("*")
    assert star and len(cs) == 2 and cs == cs.upper(), line
    assert int(cs, 16) == functools.reduce(operator.xor, body.encode("ascii"), 0), line
    assert "\r" not in body and "\n" not in body and "$" not in body
    return body.split(",")


def parse_epoch(data: bytes) -> list[list[str]]:
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    sentences = [parse_line(line + b"\r\n") for line in lines[:-1]]
    for f in sentences:
        if f[0] == "GPGSV":
            assert (len(f) - 4) % 4 == 0 and 1 <= (len(f) - 4) // 4 <= 4, f
        else:
            assert len(f) == FIELD_COUNTS[f[0]], f
    return sentences


def degrees(value: str, hemi: str) -> float:
    dot = value.index(".")
    deg = int(value[: dot - 2])
    minutes = float(value[dot - 2 :])
    assert 0 <= minutes < 60
    return (deg + minutes / 60) * (-1 if hemi in "SW" else 1)


def position(sentences: list[list[str]]) -> tuple[float, float]:
    gga = next(f for f in sentences if f[0] == "GPGGA")
    return degrees(gga[2], gga[3]), degrees(gga[4], gga[5])


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def utc_of(sentences: list[list[str]]) -> str:
    return next(f for f in sentences if f[0] == "GPGGA")[1]


# ---- NMEA helpers and the simulator (no loop) ----------------------------------------


def test_checksum_of_the_classic_example():
    body = "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    assert nmea_checksum(body) == "47"
    assert nmea_sentence(body) == b"$" + body.encode() + b"*47\r\n"
    assert nmea_checksum("AK") == "0A"  # 0x41 ^ 0x4B: leading zero, upper case


def test_epoch_has_every_sentence_with_valid_checksums_and_fields():
    sim = GpsSimulator(seed=3)
    sentences = parse_epoch(sim.epoch(T0))
    addresses = [f[0] for f in sentences]
    ngsv = addresses.count("GPGSV")
    assert addresses == ["GPGGA", "GPRMC", "GPGSA", *["GPGSV"] * ngsv, "GPVTG"]

    gga, rmc, gsa, *gsv, vtg = sentences
    assert gga[1] == rmc[1] == "221320.00" and rmc[9] == "141123"
    assert rmc[2] == "A" and rmc[12] == "A" and vtg[9] == "A"
    assert gga[6] == "1" and gsa[1:3] == ["A", "3"]

    # GSV: numbering, count in view, and the satellites listed
    in_view = int(gsv[0][3])
    assert [int(f[1]) for f in gsv] == [ngsv] * ngsv == [math.ceil(in_view / 4)] * ngsv
    assert [int(f[2]) for f in gsv] == list(range(1, ngsv + 1))
    listed = [f[i : i + 4] for f in gsv for i in range(4, len(f), 4)]
    assert len(listed) == in_view and 4 <= in_view <= 12
    for prn, elev, az, snr in listed:
        assert 1 <= int(prn) <= 32 and 0 <= int(elev) <= 90 and 0 <= int(az) < 360 and 0 < int(snr) <= 99

    # GSA's satellites are in view, and GGA counts them; DOPs are plausible
    used = [p for p in gsa[3:15] if p]
    assert set(used) <= {s[0] for s in listed} and int(gga[7]) == len(used) >= 4
    pdop, hdop, vdop = map(float, gsa[15:18])
    assert 0.5 <= hdop <= pdop < 10 and vdop > 0 and float(gga[8]) == hdop

    # speed and course agree between RMC and VTG
    assert float(rmc[7]) == pytest.approx(5, abs=0.3) and rmc[7] == vtg[5]
    assert rmc[8] == vtg[1] and float(vtg[7]) == pytest.approx(float(vtg[5]) * 1.852, abs=0.02)


def test_position_moves_with_speed_and_course_turns_slowly():
    sim = GpsSimulator(52.52, 13.405, speed_knots=10, seed=5)
    epochs = [parse_epoch(sim.epoch(T0 + s)) for s in range(61)]
    track = [position(e) for e in epochs]
    assert track[0] == pytest.approx((52.52, 13.405), abs=1e-5)
    path = sum(distance_m(a, b) for a, b in itertools.pairwise(track))
    assert path == pytest.approx(10 * 1852 / 3600 * 60, rel=0.03)  # 308.7 m
    assert distance_m(track[0], track[-1]) > 0.5 * path  # a slow turn, not a circle
    courses = [float(next(f for f in e if f[0] == "GPRMC")[8]) for e in epochs]
    for a, b in itertools.pairwise(courses):
        assert min(abs(a - b), 360 - abs(a - b)) <= 3.2


def test_standing_still_and_southern_western_hemispheres():
    sim = GpsSimulator(-33.9, -151.2, speed_knots=0, seed=1)
    first = parse_epoch(sim.epoch(T0))
    last = parse_epoch(sim.epoch(T0 + 30))
    gga = first[0]
    assert gga[2:6] == ["3354.0000", "S", "15112.0000", "W"]
    assert position(first) == position(last)
    assert first[1][7] == "0.00"


def test_minutes_never_print_as_sixty():
    sim = GpsSimulator(10.9999999999, 20.99999999999, speed_knots=0, seed=1)
    gga = parse_epoch(sim.epoch(T0))[0]
    assert gga[2:6] == ["1100.0000", "N", "02100.0000", "E"]


def test_time_fields_follow_the_simulated_clock():
    sim = GpsSimulator(seed=2)
    assert utc_of(parse_epoch(sim.epoch(T0 + 0.1))) == "221320.10"
    assert utc_of(parse_epoch(sim.epoch(T0 + 2 * 3600 + 0.25))) == "001320.25"
    rmc = parse_epoch(sim.epoch(T0 + 2 * 3600 + 1))[1]
    assert rmc[9] == "151123"  # the date rolled over at midnight


def test_seed_makes_output_deterministic():
    times = [T0 + k / 10 for k in range(50)]
    a, b, c = GpsSimulator(seed=42), GpsSimulator(seed=42), GpsSimulator(seed=43)
    out_a = [a.epoch(t) for t in times]
    assert out_a == [b.epoch(t) for t in times]
    assert out_a != [c.epoch(t) for t in times]


def test_pynmea2_parses_what_we_generate():
    pynmea2 = pytest.importorskip("pynmea2")
    sim = GpsSimulator(48.1173, 11.5167, seed=9)
    data = sim.epoch(T0)
    msgs = [pynmea2.parse(line.decode(), check=True) for line in data.split(b"\r\n") if line]
    kinds = [m.sentence_type for m in msgs]
    assert kinds[:3] == ["GGA", "RMC", "GSA"] and kinds[-1] == "VTG" and "GSV" in kinds
    gga, rmc = msgs[0], msgs[1]
    assert gga.latitude == pytest.approx(48.1173, abs=1e-5)
    assert gga.longitude == pytest.approx(11.5167, abs=1e-5)
    assert gga.gps_qual == 1 and gga.num_sats == f"{len([p for p in msgs[2].data[2:14] if p]):02d}"
    assert rmc.datetime.replace(tzinfo=None) == datetime.datetime(2023, 11, 14, 22, 13, 20)
    assert rmc.status == "A" and float(rmc.spd_over_grnd) == pytest.approx(5, abs=0.3)


# ---- replay logs (no loop) --------------------------------------------------------------


def rmc(hms: str) -> bytes:
    return nmea_sentence(f"GPRMC,{hms},A,5231.2000,N,01324.3000,E,5.00,48.4,141123,,,A")


def gga(hms: str) -> bytes:
    return nmea_sentence(f"GPGGA,{hms},5231.2000,N,01324.3000,E,1,08,1.0,34.0,M,40.0,M,,")


GSA = nmea_sentence("GPGSA,A,3,04,07,08,13,,,,,,,,,1.9,1.1,1.5")
TXT = nmea_sentence("GPTXT,01,01,02,hello")


def test_plain_nmea_is_grouped_and_paced_by_time_fields():
    groups = [
        TXT + rmc("120000.00") + gga("120000.00") + GSA,
        rmc("120001.00") + gga("120001.00"),
        gga("120003.50") + GSA + TXT,
    ]
    records, timed = parse_capture(b"".join(groups))
    assert not timed
    assert records == [(0.0, groups[0]), (1.0, groups[1]), (3.5, groups[2])]


def test_plain_replay_crosses_midnight_skips_bad_checksums_and_header():
    bad = rmc("120005.00").replace(b"*", b"*0")[:-4] + b"\r\n"  # checksum spoilt
    data = b"# Serial: 4800 8N1\r\n#\n" + rmc("235959.00") + bad + gga("000000.00") + b"junk\n"
    records, timed = parse_capture(data)
    assert not timed
    assert records == [(0.0, rmc("235959.00") + bad), (1.0, gga("000000.00") + b"junk\n")]


def test_plain_bytes_without_times_go_at_once():
    data = bytes(range(256)) * 3
    records, _ = parse_capture(data)
    assert b"".join(r[1] for r in records) == data and {r[0] for r in records} == {0.0}


def test_sample_log_in_tests_data():
    data = (pathlib.Path(__file__).parent.parent / "data" / "gps-5s.nmea").read_bytes()
    records, timed = parse_capture(data)
    assert not timed and [t for t, _ in records] == [0.0, 1.0, 2.0, 3.0, 4.0]
    for _, chunk in records:
        parse_epoch(chunk)  # each group is one whole epoch


def test_timestamped_capture_and_format_record_round_trip():
    chunks = [(0.0, b"$GPGGA,1"), (0.25, b"23\r\n\x00\xff"), (0.25, b"x"), (1.5, b"\r\n")]
    text = b"# hub4com capture\n" + b"".join(format_record(t, d) for t, d in chunks) + b"\n"
    assert format_record(0.25, b"\x00\xff") == b"0.250000 00ff\n"
    records, timed = parse_capture(text)
    assert timed and records == chunks
    assert parse_capture(b"0 41\r\n.5  4243\r\n7 \r\n")[0] == [(0.0, b"A"), (0.5, b"BC")]


@pytest.mark.parametrize(
    "text,error",
    [
        (b"0.0 41\nnot a record\n", "line 2 is not"),
        (b"0.0 414\n", "line 1 is not"),
        (b"1.0 41\n0.5 42\n", "line 2: the time goes back"),
    ],
)
def test_bad_timestamped_capture(text, error):
    with pytest.raises(ValueError, match=error):
        parse_capture(text)


# ---- the driver: options and paths ----------------------------------------------------


class FakeHub:
    """What a port needs from the hub: a loop, and received() (recorded with loop times)."""

    def __init__(self, loop=None):
        self.loop = loop
        self.got: list[tuple[float, int, object]] = []
        self.on_received = None
        self._event: asyncio.Event | None = None

    def received(self, port, msgs):
        now = self.loop.time() if self.loop else 0.0
        self.got.extend((now, port, m) for m in msgs)
        if self._event is not None:
            self._event.set()
        if self.on_received is not None:
            self.on_received(msgs)

    def chunks(self) -> list[tuple[float, bytes]]:
        return [(t, m.data) for t, _, m in self.got if type(m) is LineData]

    async def wait_for(self, predicate, timeout_s: float = 3.0) -> None:
        """Wait until predicate() holds; fail after the deadline."""
        if self._event is None:
            self._event = asyncio.Event()
        deadline = self.loop.time() + timeout_s
        while not predicate():
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                pytest.fail(f"timed out after {timeout_s} s; received {len(self.got)} messages")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                pass


def make_driver(hub, argv=()):
    driver = SimDriver(hub)
    for arg in argv:
        assert driver.config_arg(arg), arg
    return driver


def make_port(hub, path, argv=(), index=0):
    driver = make_driver(hub, argv)
    return driver.create_port(index, path, dict(driver.options))


def test_usage_text_declares_every_option_and_registry_accepts_it():
    names = option_names(SimDriver.USAGE)
    assert names == {"--rate", "--start", "--speed-knots", "--seed", "--loop", "--no-loop", "--replay-speed"}
    reg = Registry(_EPs({DRIVERS: {"sim": SimDriver}}))
    assert reg.load(DRIVERS, "sim") is SimDriver
    out = io.StringIO()
    assert print_module_help(reg, "sim", out)
    assert "replay:<file>" in out.getvalue() and "<seconds since the start>" in out.getvalue()


def test_options_are_converted_and_sticky():
    driver = make_driver(FakeHub())
    assert driver.options["--rate"] == 1.0 and driver.options["--start"] == (52.52, 13.405)
    for arg in ["--rate=12.5", "--start=-33.9,18.42", "--SPEED-KNOTS=0", "--seed=7", "--replay-speed=4"]:
        assert driver.config_arg(arg)
    assert not driver.config_arg("--baud=4800")
    o = driver.options
    assert (o["--rate"], o["--start"], o["--speed-knots"], o["--seed"], o["--replay-speed"]) == (
        12.5,
        (-33.9, 18.42),
        0.0,
        7,
        4.0,
    )
    assert driver.config_arg("--loop") and o["--loop"] is True
    assert driver.config_arg("--no-loop") and o["--loop"] is False and "--no-loop" not in o


@pytest.mark.parametrize(
    "arg,text",
    [
        ("--rate=0", "Invalid --rate value"),
        ("--rate=51", "Invalid --rate value"),
        ("--rate=fast", "Invalid --rate value"),
        ("--rate=nan", "Invalid --rate value"),
        ("--start=91,0", "Invalid --start value"),
        ("--start=52.5", "Invalid --start value"),
        ("--start=a,b", "Invalid --start value"),
        ("--speed-knots=-1", "Invalid --speed-knots value"),
        ("--seed=1.5", "Invalid --seed value"),
        ("--replay-speed=0", "Invalid --replay-speed value"),
        ("--loop=yes", "Invalid option value"),
    ],
)
def test_bad_option_values_name_the_argument(arg, text):
    with pytest.raises(UsageError) as e:
        make_driver(FakeHub(), [arg])
    assert text in str(e.value) and e.value.arg == arg


@pytest.mark.parametrize("path", ["gsp", "gps:x", "replay", "serial:/dev/ttyS0", ""])
def test_unknown_device(path):
    with pytest.raises(UsageError) as e:
        make_port(FakeHub(), path)
    assert e.value.arg == path and "Unknown simulated device" in e.value.text
    assert "(use gps or replay:<file>)" in e.value.text


def test_replay_file_problems_are_usage_errors(tmp_path):
    cases = {
        "replay:": "Missing file name",
        f"replay:{tmp_path}/missing.nmea": "Can't read the replay file (No such file",
        f"replay:{tmp_path}": "Can't read the replay file",
    }
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "bad.log").write_bytes(b"0.0 41\n0.1 zz\n")
    cases[f"replay:{tmp_path}/empty.log"] = "Nothing to replay"
    cases[f"replay:{tmp_path}/bad.log"] = "Bad timestamped capture: line 2"
    for path, text in cases.items():
        with pytest.raises(UsageError) as e:
            make_port(FakeHub(), path)
        assert e.value.arg == path and text in e.value.text, (path, e.value)


def test_port_names_capabilities_and_ignored_writes(tmp_path):
    hub = FakeHub()
    gps = make_port(hub, "GPS", index=3)
    assert isinstance(gps, GpsSimPort) and isinstance(gps, SimPort) and gps.name == "sim-gps(3)"
    log = tmp_path / "a.nmea"
    log.write_bytes(rmc("120000.00"))
    replay = make_port(hub, f"replay:{log}", index=4)
    assert isinstance(replay, ReplayPort) and replay.name == "sim-replay(4)"
    for port in (gps, replay):
        assert port.accepts & (Out.SET_BR | Out.SET_LC) == Out.SET_BR | Out.SET_LC
        port.write(LineData(b"$PUBX,41,1,0007,0003,19200,0*25\r\n"), 1)
        port.write(SetBaud(4800), 1)
        port.write(SetLineControl(LineControl(8)), 1)
        assert port.bytes_out == 33 and port.lost_total == 0 and port.queued_bytes() == 0
        port.close()
        port.close()  # twice, and before start: never raises
    assert hub.got == []


# ---- ports on a real loop -------------------------------------------------------------------


def run(coro_fn, timeout_s: float = 20.0):
    async def main():
        return await asyncio.wait_for(coro_fn(asyncio.get_running_loop()), timeout_s)

    return asyncio.run(main())


def test_gps_port_connects_and_sends_about_rate_epochs_a_second():
    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, "gps", ["--rate=10", "--seed=1"])
        port.start()
        try:
            assert hub.got[0][2] == Connect(True)
            await hub.wait_for(lambda: len(hub.chunks()) >= 1, 2.0)
            t_first = hub.chunks()[0][0]
            await asyncio.sleep(1.0)
            chunks = hub.chunks()
        finally:
            port.close()
        in_window = [c for c in chunks if c[0] <= t_first + 1.0]
        assert 7 <= len(in_window) <= 13, len(in_window)
        assert port.epochs == len(chunks) and port.bytes_in == sum(len(d) for _, d in chunks)
        stamps = []
        for _, data in chunks:
            epoch = parse_epoch(data)  # one whole epoch per chunk
            hms = utc_of(epoch)
            assert hms[-1] == "0"  # on whole tenths of a second
            stamps.append(int(hms[:2]) * 3600 + int(hms[2:4]) * 60 + float(hms[4:]))
        steps = {round((b - a) % 86400, 2) for a, b in itertools.pairwise(stamps)}
        assert steps <= {0.1, 0.2, 0.3}  # 0.1 unless a slow machine made us skip one
        # the time fields are UTC from the wall clock
        lag = (time.time() - stamps[-1]) % 86400
        assert min(lag, 86400 - lag) < 1.0

    run(body)


def test_gps_port_skips_epochs_while_paused_and_stops_when_closed():
    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, "gps", ["--rate=20"])
        port.start()
        try:
            await hub.wait_for(lambda: len(hub.chunks()) >= 2, 2.0)
            port.write(FlowControl(True), 1)  # the hub's XOFF
            port.write(FlowControl(True), 2)  # counted: needs two XONs
            n = len(hub.chunks())
            await asyncio.sleep(0.3)
            assert len(hub.chunks()) == n and port.skipped == 0
            port.write(FlowControl(False), 1)
            await asyncio.sleep(0.1)
            assert len(hub.chunks()) == n
            port.write(FlowControl(False), 2)
            await hub.wait_for(lambda: len(hub.chunks()) >= n + 2, 2.0)
            assert port.skipped >= 5, port.skipped  # about 8 epochs passed while paused
            assert "skipped" in port.status() and "read=on" in repr(port)
        finally:
            port.close()
        n = len(hub.chunks())
        await asyncio.sleep(0.2)
        assert len(hub.chunks()) == n
        port.resume_reading()  # after close: nothing restarts
        await asyncio.sleep(0.1)
        assert len(hub.chunks()) == n

    run(body)


def test_gps_pause_from_inside_emit_is_honoured():
    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, "gps", ["--rate=50"])

        def xoff_after_first(msgs):
            if any(type(m) is LineData for m in msgs):
                port.write(FlowControl(True), 1)

        hub.on_received = xoff_after_first
        port.start()
        try:
            await hub.wait_for(lambda: len(hub.chunks()) >= 1, 2.0)
            await asyncio.sleep(0.2)
            assert len(hub.chunks()) == 1
        finally:
            port.close()

    run(body)


def test_replay_plain_nmea_keeps_order_and_pace(tmp_path):
    groups = [
        TXT + rmc("120000.00") + gga("120000.00"),
        rmc("120001.00") + GSA,
        rmc("120003.00") + gga("120003.00") + TXT,
    ]
    log = tmp_path / "drive.nmea"
    log.write_bytes(b"".join(groups))

    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, f"replay:{log}", ["--replay-speed=10"])
        port.start()
        try:
            await hub.wait_for(lambda: port.finished, 3.0)
        finally:
            port.close()
        chunks = hub.chunks()
        assert [d for _, d in chunks] == groups
        (t0, _), (t1, _), (t2, _) = chunks
        assert 0.08 <= t1 - t0 <= 0.3, t1 - t0  # 1 s / 10
        assert 0.17 <= t2 - t1 <= 0.4, t2 - t1  # 2 s / 10
        assert port.status() == "finished, 1 passes"

    run(body)


def test_replay_timestamped_capture_loops(tmp_path):
    log = tmp_path / "cap.txt"
    log.write_bytes(format_record(0.0, b"A") + format_record(0.05, b"BC"))

    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, f"replay:{log}", ["--loop"])
        port.start()
        try:
            # one pass lasts 0.1 s: the log, then its last interval again
            await hub.wait_for(lambda: len(hub.chunks()) >= 7, 3.0)
        finally:
            port.close()
        chunks = hub.chunks()
        assert [d for _, d in chunks[:6]] == [b"A", b"BC"] * 3
        assert chunks[6][0] - chunks[0][0] == pytest.approx(0.3, abs=0.1)
        assert port.passes >= 3 and not port.finished

    run(body)


def test_replay_waits_while_paused_and_loses_nothing(tmp_path):
    log = tmp_path / "cap.txt"
    log.write_bytes(b"".join(format_record(i * 0.02, b"%d;" % i) for i in range(10)))

    async def body(loop):
        hub = FakeHub(loop)
        port = make_port(hub, f"replay:{log}")

        def xoff_after_first(msgs):
            if any(type(m) is LineData for m in msgs) and len(hub.chunks()) == 1:
                port.write(FlowControl(True), 1)

        hub.on_received = xoff_after_first
        port.start()
        try:
            await hub.wait_for(lambda: len(hub.chunks()) >= 1, 2.0)
            await asyncio.sleep(0.3)  # the whole log was due by now
            assert len(hub.chunks()) == 1
            t_resume = loop.time()
            port.write(FlowControl(False), 1)
            await hub.wait_for(lambda: port.finished, 2.0)
        finally:
            port.close()
        chunks = hub.chunks()
        assert b"".join(d for _, d in chunks) == b"".join(b"%d;" % i for i in range(10))
        # after the pause the rest keeps its pace: 9 more records over 0.18 s
        assert chunks[-1][0] - t_resume == pytest.approx(0.18, abs=0.1)

    run(body)


def test_sim_ports_through_the_real_command_line():
    registry = Registry(_EPs({DRIVERS: {"sim": SimDriver, "serial": FakeDriver}}))

    async def body(loop):
        cfg = build(
            ["--use-driver=sim", "--rate=20", "--seed=4", "gps", "--use-driver=serial", "sink"],
            loop,
            registry,
        )
        assert [p.name for p in cfg.hub.ports] == ["sim-gps(0)", "sink(1)"]
        assert cfg.warnings == []
        sink = cfg.hub.ports[1]
        cfg.hub.start()
        try:
            sink_data = lambda: [m.data for m in sink.written if type(m) is LineData]  # noqa: E731
            await asyncio.wait_for(_until(lambda: len(sink_data()) >= 3), 3.0)
        finally:
            cfg.hub.close()
        for data in sink_data():
            parse_epoch(data)

    run(body)


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.02)  # the fake sink has no event to wait on; the caller sets a deadline
