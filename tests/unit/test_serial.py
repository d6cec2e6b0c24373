"""The serial driver against pty pairs standing in for serial devices.

The slave side of os.openpty() is the "serial port" the driver opens through
pyserial; the test holds the master and plays the device. A Linux pty keeps
the baud rate, stop bits and CRTSCTS, forces 8 data bits and no parity, and
has no modem lines. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import termios
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial as pyserial

import drivers.serial as serial_mod
from drivers._fdio import FdStream
from drivers.serial import ITO_LIMIT, SerialDriver, SerialPort, _State
from hub.caps import In
from hub.errors import UsageError
from hub.messages import (
    Connect,
    Flow,
    FlowControl,
    FlowMode,
    LineControl,
    LineData,
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
from hub.options import parse_options

LOG = "drivers.serial"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value including 0xFF, XON, XOFF

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


# ---- harness --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    if uvloop is not None:  # uvloop opens a few process-wide fds on first use
        uvloop.new_event_loop().close()
    gc.collect()  # earlier tests' garbage may close fds while this one runs
    before = len(os.listdir("/proc/self/fd"))
    yield
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before, "file descriptors leaked"


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[..., object]:
    """Run an async test body on a fresh loop (standard or uvloop), with a deadline."""
    factory = asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop

    def _run(body: Callable[[], object], timeout: float = 30.0) -> object:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(body(), timeout))  # type: ignore[arg-type]

    return _run


class Waker:
    """Lets a test wait, with a deadline, for a condition that a callback makes true."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def poke(self) -> None:
        self.event.set()

    async def until(self, pred: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), min(remaining, 0.2))


class FakeHub:
    """The HubLink a port needs: a loop, and received() recording what the port reads."""

    def __init__(self, waker: Waker):
        self.loop = asyncio.get_running_loop()
        self.waker = waker
        self.msgs: list[Message] = []

    def received(self, port: int, msgs: list[Message]) -> None:
        self.msgs.extend(msgs)
        self.waker.poke()

    def data(self) -> bytes:
        return b"".join(m.data for m in self.msgs if type(m) is LineData)

    def chunks(self) -> list[bytes]:
        return [m.data for m in self.msgs if type(m) is LineData]

    def signals(self) -> list[Message]:
        return [m for m in self.msgs if type(m) is not LineData]

    def count(self, msg: Message) -> int:
        return sum(1 for m in self.msgs if m == msg)


class Device:
    """A pty pair: the slave path is the serial port, the test plays the device on the master."""

    def __init__(self, waker: Waker):
        self.waker = waker
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        os.set_blocking(self.master, False)
        self.received = bytearray()
        self.stream = FdStream(asyncio.get_running_loop(), self.master, self._on_data, self._on_error)
        self.stream.resume_reading()
        self.closed = False

    def _on_data(self, data: bytes) -> None:
        self.received += data
        self.waker.poke()

    def _on_error(self, exc: OSError | None) -> None:
        self.waker.poke()

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def attrs(self) -> list:
        """The termios of the port, read through the slave fd the test keeps open."""
        return termios.tcgetattr(self.slave)

    def unplug(self) -> None:
        """Close both ends: the port's reads see a hang-up, as on a USB unplug."""
        if not self.closed:
            self.closed = True
            self.stream.stop()
            os.close(self.master)
            os.close(self.slave)


@contextlib.contextmanager
def devices() -> Iterator[Callable[[Waker], Device]]:
    made: list[Device] = []

    def make(waker: Waker) -> Device:
        made.append(Device(waker))
        return made[-1]

    try:
        yield make
    finally:
        for d in made:
            d.unplug()


def make_port(hub: FakeHub, path: str, *args: str, index: int = 0, wanted: In = In.NONE) -> SerialPort:
    """Create a port the way the hub does: sticky options, then create_port."""
    drv = SerialDriver(hub)
    for arg in args:
        assert drv.config_arg(arg), arg
    port = drv.create_port(index, path, dict(drv.options))
    port.wanted = wanted
    return port


# ---- options ------------------------------------------------------------------


def test_usage_parses_every_option() -> None:
    argv = [
        "--baud=9600",
        "--data=7",
        "--parity=e",
        "--stop=2",
        "--octs=off",
        "--odsr=off",
        "--ox=on",
        "--ix=c",
        "--idsr=off",
        "--ito=10",
        "--write-limit=100",
        "--share-mode=on",
        "--restore=off",
        "--reopen-interval=500",
        "--if-absent=wait",
        "--sysfs=/tmp/sys",
        "--dev=/tmp/dev",
    ]
    parsed = parse_options(SerialDriver.USAGE, argv)
    assert len(parsed) == len(argv)
    assert set(SerialDriver.DEFAULTS) == set(parsed)


@pytest.mark.parametrize(
    ("arg", "name", "value"),
    [
        ("--baud=9600", "--baud", 9600),
        ("--baud=c", "--baud", None),
        ("--baud=Current", "--baud", None),
        ("--data=5", "--data", 5),
        ("--data=cur", "--data", None),
        ("--parity=n", "--parity", Parity.NONE),
        ("--parity=odd", "--parity", Parity.ODD),
        ("--parity=Even", "--parity", Parity.EVEN),
        ("--parity=mark", "--parity", Parity.MARK),
        ("--parity=s", "--parity", Parity.SPACE),
        ("--parity=c", "--parity", None),
        ("--stop=1", "--stop", StopBits.ONE),
        ("--stop=1.5", "--stop", StopBits.ONE_POINT_FIVE),
        ("--stop=1,5", "--stop", StopBits.ONE_POINT_FIVE),
        ("--stop=2", "--stop", StopBits.TWO),
        ("--stop=c", "--stop", None),
        ("--octs=off", "--octs", False),
        ("--octs=ON", "--octs", True),
        ("--octs=c", "--octs", None),
        ("--ox=on", "--ox", True),
        ("--ix=current", "--ix", None),
        ("--odsr=on", "--odsr", True),
        ("--idsr=off", "--idsr", False),
        ("--ito=0", "--ito", 0),
        ("--ito=25", "--ito", 25),
        ("--write-limit=0", "--write-limit", 0),
        ("--share-mode=on", "--share-mode", True),
        ("--share-mode=off", "--share-mode", False),
        ("--reopen-interval=250", "--reopen-interval", 250),
    ],
)
def test_option_values(arg: str, name: str, value: object) -> None:
    drv = SerialDriver(None)  # type: ignore[arg-type]
    assert drv.config_arg(arg)
    assert drv.options[name] == value
    assert type(drv.options[name]) is type(value)


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--baud=fast", "Invalid --baud value"),
        ("--baud=0", "Invalid --baud value"),
        ("--baud=-9600", "Invalid --baud value"),
        ("--baud=96OO", "Invalid --baud value"),
        ("--data=9", "Invalid --data value"),
        ("--data=4", "Invalid --data value"),
        ("--data=x", "Invalid --data value"),
        ("--parity=x", "Invalid --parity value"),
        ("--parity=1", "Invalid --parity value"),
        ("--stop=3", "Invalid --stop value"),
        ("--stop=1.25", "Invalid --stop value"),
        ("--octs=yes", "Invalid --octs value"),
        ("--ix=1", "Invalid --ix value"),
        ("--share-mode=c", "Invalid --share-mode value"),
        ("--ito=-1", "Invalid --ito value"),
        ("--write-limit=big", "Invalid --write-limit value (a number of bytes, 0 discards all writes)"),
        ("--reopen-interval=1s", "Invalid --reopen-interval value"),
    ],
)
def test_bad_option_values(arg: str, text: str) -> None:
    drv = SerialDriver(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        drv.config_arg(arg)
    assert info.value.text == text
    assert info.value.arg == arg
    assert str(info.value) == f"{text} in '{arg}'"


def test_defaults_are_hub4com_ones() -> None:
    opts = SerialDriver.DEFAULTS
    assert (opts["--baud"], opts["--data"], opts["--parity"], opts["--stop"]) == (
        19200,
        8,
        Parity.NONE,
        StopBits.ONE,
    )
    assert opts["--octs"] is True
    assert not any(opts[o] for o in ("--odsr", "--ox", "--ix", "--idsr", "--share-mode"))
    assert "--octs=off" in SerialDriver.USAGE  # the FAQ: a real port that sends nothing
    assert "CRTSCTS" in SerialDriver.USAGE


def test_port_names_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    drv = SerialDriver(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        drv.create_port(0, "/nonexistent/ttyUSB9", dict(drv.options))
    assert (info.value.arg, info.value.text) == ("/nonexistent/ttyUSB9", "no such device")

    monkeypatch.setattr(os.path, "exists", lambda path: True)
    port = drv.create_port(3, "/dev/ttyUSB0", dict(drv.options))
    assert (port.name, port.path) == ("ttyUSB0(3)", "/dev/ttyUSB0")
    port = drv.create_port(4, "ttyS1", dict(drv.options))
    assert (port.name, port.path) == ("ttyS1(4)", "/dev/ttyS1")
    port = drv.create_port(5, "/dev/pts/7", dict(drv.options))
    assert port.name == "pts/7(5)"
    assert port.provides == In.LBR | In.LLC | In.LFLOW | In.RBR | In.RLC | In.MODEM


def test_dsr_options_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    drv = SerialDriver(None)  # type: ignore[arg-type]
    drv.config_arg("--odsr=on")
    drv.config_arg("--idsr=on")
    with caplog.at_level(logging.WARNING, LOG):
        drv.create_port(0, "/dev/null", dict(drv.options))
        drv.create_port(1, "/dev/null", dict(drv.options))
    texts = [r.getMessage() for r in caplog.records]
    assert sum("--odsr=on ignored" in t for t in texts) == 1
    assert sum("--idsr=on ignored" in t for t in texts) == 1


# ---- opening ------------------------------------------------------------------


def test_open_errors(run, tmp_path: Path) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        missing = tmp_path / "gone"
        missing.write_bytes(b"")
        port = make_port(hub, str(missing))
        missing.unlink()  # unplugged between the command line and the start
        with pytest.raises(UsageError) as info:
            port.start()
        assert (info.value.arg, info.value.text) == (str(missing), "no such device")

        plain = tmp_path / "file"
        plain.write_bytes(b"")
        with pytest.raises(UsageError) as info:
            make_port(hub, str(plain)).start()
        assert info.value.text == "not a serial device"
        assert hub.msgs == []

    run(body)


def test_busy_device(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            first = make_port(hub, dev.path, index=0)
            first.start()
            second = make_port(hub, dev.path, index=1)
            with pytest.raises(UsageError) as info:
                second.start()
            assert info.value.text == "device is busy (another program holds it)"
            assert info.value.arg == dev.path
            assert str(info.value) == f"device is busy (another program holds it) in '{dev.path}'"
            # Another program using pyserial's lock is refused as well ...
            other = pyserial.Serial()
            other.port, other.exclusive = dev.path, True
            with pytest.raises(pyserial.SerialException):
                other.open()
            # ... and the device is free again once the port is closed.
            first.close()
            other.open()
            other.close()

    run(body)


# ---- data ---------------------------------------------------------------------


def test_data_both_ways(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path)
            port.start()
            assert hub.msgs == [Connect(True)]
            assert port.connected

            dev.write(PAYLOAD)
            await waker.until(lambda: len(hub.data()) >= len(PAYLOAD), "data from the device")
            assert hub.data() == PAYLOAD
            assert len(hub.chunks()) < len(PAYLOAD) // 1024  # large reads, not byte by byte
            assert port.bytes_in == len(PAYLOAD)

            port.write(LineData(PAYLOAD), 1)
            await waker.until(lambda: len(dev.received) >= len(PAYLOAD), "data to the device")
            assert bytes(dev.received) == PAYLOAD
            assert port.lost == 0
            assert port.queued_bytes() == 0
            # The queue went over its high watermark once and back under the low one.
            assert [m for m in hub.msgs if type(m) is FlowControl] == [FlowControl(True), FlowControl(False)]
            port.close()
            port.close()  # closing twice is harmless

    run(body)


def test_hub_flow_control_pauses_reading(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path)
            port.start()
            port.write(FlowControl(True), 1)
            dev.write(b"held back")
            await asyncio.sleep(0.1)
            assert hub.data() == b""
            port.write(FlowControl(False), 1)
            await waker.until(lambda: hub.data() == b"held back", "data after XON")
            port.close()

    run(body)


def test_purge_tx_discards_queued_output(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path)
            port.start()
            dev.stream.pause_reading()  # the device stops taking data: the queue fills
            port.write(LineData(PAYLOAD), 1)
            assert port.queued_bytes() > 0
            port.write(PurgeTx(), 1)
            assert port.queued_bytes() == 0
            assert port.lost == 0  # a purge is not a loss
            assert hub.msgs[-1] == FlowControl(False)
            dev.stream.resume_reading()
            port.write(LineData(b"after"), 1)
            await waker.until(lambda: dev.received.endswith(b"after"), "data after the purge")
            assert len(dev.received) < len(PAYLOAD)
            port.close()

    run(body)


def test_write_limit_zero_discards_everything(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--write-limit=0")
            port.start()
            port.write(LineData(b"dropped"), 1)
            assert port.lost == 7
            dev.write(b"still read")
            await waker.until(lambda: hub.data() == b"still read", "data from a read-only port")
            assert dev.received == b""
            port.close()

    run(body)


def test_ix_strips_xon_xoff_and_counts_them(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--ix=on")
            port.start()
            attrs = dev.attrs()
            assert attrs[0] & termios.IXOFF and not attrs[0] & termios.IXON
            port.write(LineData(b"a\x11b\x13c\x11\x13"), 1)
            port.write(LineData(b"\x13"), 1)
            port.write(LineData(b"d"), 1)
            await waker.until(lambda: dev.received == b"abcd", "stripped data")
            assert port.lost == 5
            port.close()

            dev2 = make(waker)
            plain = make_port(hub, dev2.path, "--ix=off")
            plain.start()
            plain.write(LineData(b"a\x11b\x13c"), 1)
            await waker.until(lambda: dev2.received == b"a\x11b\x13c", "unstripped data")
            assert plain.lost == 0
            plain.close()

    run(body)


def test_ito_coalesces_reads(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        loop = asyncio.get_running_loop()
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--ito=300")
            port.start()
            dev.write(b"ab")
            await asyncio.sleep(0.05)
            dev.write(b"cd")
            last = loop.time()
            await waker.until(lambda: hub.data() == b"abcd", "coalesced data")
            assert loop.time() - last >= 0.25  # held until the gap passed
            assert hub.chunks() == [b"abcd"]

            # Big bursts go out every 64 KiB without waiting for a gap.
            burst = PAYLOAD[: 3 * ITO_LIMIT + 1000]
            dev.write(burst)
            await waker.until(lambda: len(hub.data()) >= 4 + len(burst), "a burst")
            chunks = hub.chunks()[1:]
            assert b"".join(chunks) == burst
            assert len(chunks) >= 3
            assert all(len(c) >= ITO_LIMIT for c in chunks[:-1])
            port.close()

    run(body)


# ---- settings -------------------------------------------------------------------


def test_settings_applied_to_termios(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--baud=115200", "--stop=2", "--octs=on", "--ox=on")
            port.start()
            iflag, _, cflag, _, _, ospeed, _ = dev.attrs()
            assert ospeed == termios.B115200
            assert cflag & termios.CSTOPB
            assert cflag & termios.CRTSCTS
            assert iflag & termios.IXON and not iflag & termios.IXOFF
            assert not iflag & termios.INPCK  # no parity checking
            assert cflag & termios.CSIZE == termios.CS8
            port.close()

            dev2 = make(waker)
            port2 = make_port(hub, dev2.path, "--baud=123456", "--octs=off", index=1)
            port2.wanted = In.LBR
            port2.start()
            _, _, cflag, _, _, _, _ = dev2.attrs()
            assert not cflag & termios.CRTSCTS
            assert hub.msgs[-1] == LocalBaudStatus(123456)  # a custom rate (BOTHER) reads back
            port2.close()

    run(body)


def test_pty_forces_8n_and_the_driver_says_so(run, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--data=7", "--parity=even", wanted=In.LLC)
            with caplog.at_level(logging.WARNING, LOG):
                port.start()
            assert hub.msgs == [Connect(True), LocalLcStatus(LineControl(8, Parity.NONE, StopBits.ONE))]
            texts = [r.getMessage() for r in caplog.records]
            assert any("did not take data bits 7; it uses 8" in t for t in texts)
            assert any("did not take parity even; it uses none" in t for t in texts)
            port.close()
            # The pty keeps its termios; opening again asks only for what it refuses
            # (Linux answers EINVAL), which must not stop the port from opening.
            again = make_port(hub, dev.path, "--data=7", "--parity=even")
            again.start()
            assert again.connected
            again.close()

    run(body)


def test_current_keeps_the_device_settings(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            attrs = dev.attrs()
            attrs[0] |= termios.IXON
            attrs[2] |= termios.CSTOPB | termios.CRTSCTS
            attrs[4] = attrs[5] = termios.B57600
            termios.tcsetattr(dev.slave, termios.TCSANOW, attrs)
            port = make_port(
                hub,
                dev.path,
                *("--baud=c", "--data=c", "--parity=c", "--stop=c", "--octs=c", "--ox=c", "--ix=c"),
                wanted=In.LBR | In.LLC,
            )
            port.start()
            iflag, _, cflag, _, _, ospeed, _ = dev.attrs()
            assert ospeed == termios.B57600
            assert cflag & termios.CSTOPB and cflag & termios.CRTSCTS
            assert iflag & termios.IXON and not iflag & termios.IXOFF
            assert hub.msgs == [
                Connect(True),
                LocalBaudStatus(57600),
                LocalLcStatus(LineControl(8, Parity.NONE, StopBits.TWO)),
            ]
            port.close()

    run(body)


def test_start_statuses(run, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, wanted=In.LBR | In.LLC | In.RBR | In.RLC | In.CTS | In.DCD)
            with caplog.at_level(logging.WARNING, LOG):
                port.start()
            lc = LineControl(8, Parity.NONE, StopBits.ONE)
            # A pty has no modem lines: no ModemStatus, a warning, and no polling.
            assert hub.msgs == [
                Connect(True),
                LocalBaudStatus(19200),
                LocalLcStatus(lc),
                RemoteBaudStatus(19200),
                RemoteLcStatus(lc),
            ]
            texts = [r.getMessage() for r in caplog.records]
            assert any("supposed equal to the local ones" in t for t in texts)
            assert any("no modem lines" in t for t in texts)
            assert port._poll_timer is None
            port.close()

    run(body)


def test_set_baud_and_line_control(run, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, wanted=In.LBR | In.LLC)
            port.start()
            del hub.msgs[:]

            port.write(SetBaud(115200), 1)
            assert hub.msgs == [LocalBaudStatus(115200)]
            assert dev.attrs()[5] == termios.B115200
            port.write(SetBaud(115200), 1)  # no change, no status
            assert hub.msgs == [LocalBaudStatus(115200)]

            # Only the fields that changed are reported.
            port.write(SetLineControl(LineControl(8, Parity.NONE, StopBits.TWO)), 1)
            assert hub.msgs[-1] == LocalLcStatus(LineControl(None, None, StopBits.TWO))
            assert dev.attrs()[2] & termios.CSTOPB

            # A pty keeps 8 data bits: a warning, and the value the device kept is
            # reported although it did not change (an RFC 2217 server answers with it).
            n = len(hub.msgs)
            with caplog.at_level(logging.WARNING, LOG):
                port.write(SetLineControl(LineControl(data_bits=7, stop_bits=StopBits.TWO)), 1)
            assert hub.msgs[n:] == [LocalLcStatus(LineControl(data_bits=8))]
            n = len(hub.msgs)
            with caplog.at_level(logging.WARNING, LOG):
                port.write(SetLineControl(LineControl(parity=Parity.EVEN)), 1)
            assert hub.msgs[n:] == [LocalLcStatus(LineControl(parity=Parity.NONE))]
            # Values refused before reaching the device give a warning, and the value
            # the device keeps is reported, so that whoever asked gets an answer.
            n = len(hub.msgs)
            with caplog.at_level(logging.WARNING, LOG):
                port.write(SetBaud(0), 1)
                port.write(SetBaud(4294967295), 1)  # pyserial's custom-rate ioctl would overflow
                port.write(SetLineControl(LineControl(data_bits=9)), 1)
            assert hub.msgs[n:] == [
                LocalBaudStatus(115200),
                LocalBaudStatus(115200),
                LocalLcStatus(LineControl(data_bits=8)),
            ]
            assert dev.attrs()[5] == termios.B115200
            port.write(SetBaud(9600), 1)  # nothing was left half-set: the next request works
            assert hub.msgs[-1] == LocalBaudStatus(9600) and dev.attrs()[5] == termios.B9600
            texts = [r.getMessage() for r in caplog.records]
            assert any("did not take data bits 7" in t for t in texts)
            assert any("invalid baud rate 0" in t for t in texts)
            assert any("invalid data bits 9" in t for t in texts)
            assert port.connected
            port.close()

    run(body)


def test_flow_control_requests(run) -> None:
    """SetFlow sets CRTSCTS, IXON and IXOFF; the device's flow control is reported
    after each request, changed or not (an RFC 2217 server answers with it)."""

    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--octs=off", wanted=In.LFLOW)
            port.start()
            assert hub.msgs[-1] == LocalFlowStatus(Flow(FlowMode.NONE, FlowMode.NONE))
            hw, xon, none = FlowMode.HARDWARE, FlowMode.XON_XOFF, FlowMode.NONE

            port.write(SetFlow(Flow(hw, hw)), 1)
            assert hub.msgs[-1] == LocalFlowStatus(Flow(hw, hw))
            assert dev.attrs()[2] & termios.CRTSCTS
            port.write(SetFlow(Flow(xon, xon)), 1)
            assert hub.msgs[-1] == LocalFlowStatus(Flow(xon, xon))
            iflag, cflag = dev.attrs()[0], dev.attrs()[2]
            assert iflag & termios.IXON and iflag & termios.IXOFF and not cflag & termios.CRTSCTS
            port.write(SetFlow(Flow(inbound=none)), 1)  # one direction only
            assert hub.msgs[-1] == LocalFlowStatus(Flow(xon, none))
            assert dev.attrs()[0] & termios.IXON and not dev.attrs()[0] & termios.IXOFF
            n = len(hub.msgs)
            port.write(SetFlow(Flow(inbound=none)), 1)  # no change: answered all the same
            assert hub.msgs[n:] == [LocalFlowStatus(Flow(xon, none))]
            port.close()

    run(body)


def test_restore_configured_settings_after_the_last_connection(run) -> None:
    """--restore (default on): once the connection counter falls to 0 the device is
    back at its configured baud rate, format and flow control; --restore=off keeps them."""

    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            for restore in ("on", "off"):
                dev = make(waker)
                port = make_port(
                    hub, dev.path, "--baud=9600", "--octs=off", f"--restore={restore}", wanted=In.LBR
                )
                port.start()
                port.write(Connect(True), 1)
                port.write(Connect(True), 2)
                port.write(SetBaud(115200), 1)
                port.write(SetFlow(Flow(FlowMode.HARDWARE, FlowMode.HARDWARE)), 1)
                assert dev.attrs()[5] == termios.B115200 and dev.attrs()[2] & termios.CRTSCTS
                port.write(Connect(False), 1)  # one connection left: nothing changes yet
                assert dev.attrs()[5] == termios.B115200
                del hub.msgs[:]
                port.write(Connect(False), 2)
                if restore == "on":
                    assert dev.attrs()[5] == termios.B9600 and not dev.attrs()[2] & termios.CRTSCTS
                    assert hub.msgs == [LocalBaudStatus(9600)]
                else:
                    assert dev.attrs()[5] == termios.B115200 and dev.attrs()[2] & termios.CRTSCTS
                    assert hub.msgs == []
                port.close()

    run(body)


def test_pins_on_a_pty(run, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path)
            port.start()
            with caplog.at_level(logging.WARNING, LOG):
                port.write(SetPins(0, Pin.DTR | Pin.RTS), 1)
                port.write(SetPins(Pin.DTR, Pin.DTR), 1)
                port.write(SetPins(Pin.BREAK, Pin.BREAK), 1)  # ptys accept break
                port.write(SetPins(0, Pin.BREAK), 1)
            texts = [r.getMessage() for r in caplog.records]
            assert sum("cannot drive DTR" in t for t in texts) == 1
            assert sum("cannot drive RTS" in t for t in texts) == 1
            assert port.connected
            assert port._pins == Pin.DTR
            port.close()

    run(body)


def test_modem_lines_polled_only_when_wanted(run, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = {"msr": int(Msr.CTS)}
    monkeypatch.setattr(serial_mod, "read_modem_lines", lambda fd: lines["msr"])

    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            idle = make_port(hub, dev.path)
            idle.start()
            assert idle._poll_timer is None  # nobody uses modem lines: no polling
            idle.close()

            mask = int(Msr.CTS | Msr.DSR)
            port = make_port(hub, dev.path, wanted=In.CTS | In.DSR)
            del hub.msgs[:]
            port.start()
            assert hub.msgs == [Connect(True), ModemStatus(int(Msr.CTS), mask)]
            lines["msr"] = int(Msr.CTS | Msr.DSR | Msr.DCD)  # DCD is not wanted
            await waker.until(lambda: len(hub.msgs) == 3, "a modem status change")
            assert hub.msgs[2] == ModemStatus(mask, mask)
            lines["msr"] = int(Msr.CTS | Msr.DSR)  # only an unwanted line changed
            await asyncio.sleep(3 * serial_mod.MODEM_POLL_S)
            assert len(hub.msgs) == 3
            port.close()
            assert port._poll_timer is None

    run(body)


# ---- device loss, share mode -------------------------------------------------------


def test_device_loss_and_reopen(run, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        link = tmp_path / "dev0"
        with devices() as make, caplog.at_level(logging.INFO, LOG):
            dev = make(waker)
            link.symlink_to(dev.path)
            port = make_port(hub, str(link), "--reopen-interval=50", "--baud=57600", wanted=In.LBR)
            assert port.name == "dev0(0)"
            port.start()
            port.write(SetPins(0, Pin.DTR), 1)  # remembered for the reopen
            dev.write(b"before")
            await waker.until(lambda: hub.data() == b"before", "data before the unplug")

            dev.unplug()
            link.unlink()
            await waker.until(lambda: not port.connected, "the loss")
            assert hub.msgs[-1] == Connect(False)
            port.write(LineData(b"into the void"), 1)
            assert port.lost == len(b"into the void")
            # no such device: the port waits for the link to appear (inotify), no retries
            await waker.until(lambda: port._state is _State.ABSENT, "waiting for the device")
            assert port.status() == f"absent (waiting for {link})"

            dev2 = make(waker)
            link.symlink_to(dev2.path)
            await waker.until(lambda: port.connected, "the reopen")
            assert hub.msgs[-2:] == [Connect(True), LocalBaudStatus(57600)]
            assert dev2.attrs()[5] == termios.B57600  # same settings again
            assert not port._ser.dtr  # same pin state again
            dev2.write(b"after")
            port.write(LineData(b"back"), 1)
            await waker.until(lambda: hub.data() == b"beforeafter", "data after the reopen")
            await waker.until(lambda: dev2.received == b"back", "data to the new device")
            port.close()
        texts = [r.getMessage() for r in caplog.records]
        assert any("device lost" in t for t in texts)
        assert sum("reopened" in t for t in texts) == 1
        assert sum("is absent; waiting" in t for t in texts) == 1

    run(body)


def test_reopen_backoff(tmp_path: Path) -> None:
    class Timer:
        def cancel(self) -> None:
            pass

    class Loop:
        def __init__(self) -> None:
            self.delays: list[float] = []

        def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
            self.delays.append(delay)
            return Timer()

    class Hub:
        loop = Loop()

        def received(self, port: int, msgs: list[Message]) -> None:
            pass

    hub = Hub()
    plain = tmp_path / "plain"  # exists, but opening it always fails
    plain.write_bytes(b"")
    port = make_port(hub, str(plain))  # type: ignore[arg-type]
    port._state = _State.RETRY
    for _ in range(8):
        port._on_reopen_timer()
    assert hub.loop.delays == [1, 2, 4, 8, 10, 10, 10, 10]

    hub.loop.delays.clear()
    slow = make_port(hub, str(plain), "--reopen-interval=20000")  # type: ignore[arg-type]
    slow._state = _State.RETRY
    for _ in range(4):
        slow._on_reopen_timer()
    assert hub.loop.delays == [20, 30, 30, 30]
    slow.close()
    port.close()


def test_no_reopen_with_interval_zero(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--reopen-interval=0")
            port.start()
            dev.unplug()
            await waker.until(lambda: not port.connected, "the loss")
            assert port._state is _State.IDLE
            assert port._reopen_timer is None
            port.close()

    run(body)


def test_share_mode_follows_the_connection_counter(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--share-mode=on", "--reopen-interval=50", wanted=In.LBR)
            port.start()  # checks the device, then leaves it closed
            assert hub.msgs == []
            assert not port.connected

            def free() -> bool:
                other = pyserial.Serial()
                other.port, other.exclusive = dev.path, True
                try:
                    other.open()
                except pyserial.SerialException:
                    return False
                other.close()
                return True

            assert free()
            port.write(LineData(b"nobody listens"), 1)
            assert port.lost == len(b"nobody listens")

            port.write(Connect(True), 1)
            assert hub.msgs == [Connect(True), LocalBaudStatus(19200)]
            assert not free()
            port.write(Connect(True), 2)
            port.write(Connect(False), 1)
            assert port.connected  # one connection left
            port.write(LineData(b"to device"), 2)
            dev.write(b"from device")
            await waker.until(lambda: dev.received == b"to device", "data to the device")
            await waker.until(lambda: hub.data() == b"from device", "data from the device")
            port.write(Connect(False), 2)
            assert hub.msgs[-1] == Connect(False)
            assert not port.connected
            assert free()

            # A failed open (another program holds the device) is retried while connected.
            holder = pyserial.Serial()
            holder.port, holder.exclusive = dev.path, True
            holder.open()
            port.write(Connect(True), 1)
            assert not port.connected
            assert port._state is _State.RETRY
            await asyncio.sleep(0.15)
            assert not port.connected
            holder.close()
            await waker.until(lambda: port.connected, "the retried open")
            port.write(Connect(False), 1)
            assert not port.connected
            assert port._reopen_timer is None
            port.close()

    run(body)


def test_share_mode_start_with_connections_pending(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--share-mode=on")
            port.write(Connect(True), 1)  # another port started first and connected
            port.start()
            assert hub.msgs == [Connect(True)]
            port.close()

    run(body)


def test_close_cancels_reopen(run) -> None:
    async def body() -> None:
        waker = Waker()
        hub = FakeHub(waker)
        with devices() as make:
            dev = make(waker)
            port = make_port(hub, dev.path, "--reopen-interval=50")
            port.start()
            dev.unplug()
            await waker.until(lambda: port._state is _State.RETRY, "the loss")
            port.close()
            assert port._reopen_timer is None
            assert port._state is _State.CLOSED
            port.write(LineData(b"x"), 1)
            assert port.lost == 1

    run(body)
