"""The pty driver against real ptys, with pyserial (or plain fds) as the application.

Each async test runs on the standard asyncio loop and on uvloop. Application-side
calls that block run in threads (asyncio.to_thread), so the driver keeps running.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import random
import select
import shutil
import subprocess
import termios
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import pytest
import serial

import drivers.pty as ptymod
from drivers._sessions import Frame, SlowClient
from drivers.pty import POLL_INTERVAL_S, USAGE, PtyDriver, PtyPort, read_line_settings
from hub.caps import In, Out
from hub.cli import build
from hub.errors import UsageError
from hub.messages import (
    Connect,
    FlowControl,
    LineControl,
    LineData,
    Message,
    ModemStatus,
    Msr,
    Parity,
    PurgeTx,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetLineControl,
    StopBits,
)
from hub.options import option_names
from hub.port import DEFAULT_WRITE_LIMIT

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]

#: Every wait in these tests ends after this long at the latest.
DEADLINE_S = 5.0
#: How often a wait re-checks its condition when no message came.
STATE_CHECK_S = 0.01
LINES = Msr.CTS | Msr.DSR | Msr.DCD

LOOPS = ["asyncio", *(["uvloop"] if uvloop is not None else [])]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on a fresh loop of the parametrised kind."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(coro)

    return runner


class FakeHub:
    """Records what ports emit; lets a test wait for a condition with a deadline."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.msgs: list[Message] = []
        self._changed = asyncio.Event()

    def received(self, port: int, msgs: list[Message]) -> None:
        self.msgs.extend(msgs)
        self._changed.set()

    async def wait_for(self, pred: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
        deadline = self.loop.time() + timeout_s
        while not pred():
            self._changed.clear()
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}; got {self.summary()}")
            try:
                # Wake on every message, and every few ms for conditions on port state.
                await asyncio.wait_for(self._changed.wait(), min(remaining, STATE_CHECK_S))
            except TimeoutError:
                pass

    def data(self) -> bytes:
        return b"".join(m.data for m in self.msgs if type(m) is LineData)

    def of(self, cls: type) -> list[Any]:
        return [m for m in self.msgs if type(m) is cls]

    def signals(self) -> list[Message]:
        """Everything but data."""
        return [m for m in self.msgs if type(m) is not LineData]

    def count(self, msg: Message) -> int:
        return sum(1 for m in self.msgs if m == msg)

    def summary(self) -> str:
        return f"{self.signals()!r} and {len(self.data())} data bytes"[:3000]


def make_port(
    hub: Any, path: os.PathLike[str] | str, *, index: int = 2, wanted: In = In.DSR, argv: tuple[str, ...] = ()
) -> PtyPort:
    driver = PtyDriver(hub)
    for arg in argv:
        assert driver.config_arg(arg)
    port = driver.create_port(index, str(path), dict(driver.options))
    port.wanted = wanted
    return port


def started(hub: FakeHub, path: os.PathLike[str] | str, **kw: Any) -> PtyPort:
    port = make_port(hub, path, **kw)
    port.start()
    return port


def app_open(link: os.PathLike[str] | str, **kw: Any) -> serial.Serial:
    """Open the link as an application would, with pyserial."""
    return serial.Serial(str(link), timeout=DEADLINE_S, **kw)


def raw_open(link: os.PathLike[str] | str) -> int:
    """Open the link with a plain open(): no termios set-up, no input flush."""
    return os.open(str(link), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def read_fd(fd: int, n: int, timeout_s: float = DEADLINE_S) -> bytes:
    """Read n bytes from a non-blocking fd (in a worker thread), or what came by the deadline."""
    out = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(out) < n and poller.poll(int(timeout_s * 1000)):
        try:
            out += os.read(fd, n - len(out))
        except BlockingIOError:
            continue
    return bytes(out)


def read_fd_until(fd: int, end: bytes, timeout_s: float = DEADLINE_S) -> bytes:
    """Read a non-blocking fd (in a worker thread) until what came ends with `end`,
    or the deadline."""
    out = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    while not out.endswith(end):
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            break
        try:
            out += os.read(fd, 65536)
        except BlockingIOError:
            continue
    return bytes(out)


async def connected(hub: FakeHub, port: PtyPort, n: int = 1) -> None:
    await hub.wait_for(lambda: hub.count(Connect(True)) >= n and port.connected, f"connect #{n}")


async def disconnected(hub: FakeHub, port: PtyPort, n: int = 1) -> None:
    await hub.wait_for(lambda: hub.count(Connect(False)) >= n and not port.connected, f"disconnect #{n}")


def _ends_with(hub: FakeHub, token: bytes) -> bool:
    return hub.data().endswith(token)


async def sync_with_app(hub: FakeHub, ser: serial.Serial, token: bytes) -> None:
    """The application writes `token`; once it arrives, every termios change the
    application made before it has been seen (status bytes precede data)."""
    await asyncio.to_thread(ser.write, token)
    await hub.wait_for(lambda: hub.data().endswith(token), f"token {token!r}")


# ---- options, usage, paths (no loop needed) ---------------------------------------


def test_usage_declares_the_options_with_their_defaults() -> None:
    assert option_names(USAGE) == {
        "--write-limit",
        "--frame",
        "--slow-client",
        "--buffer",
        "--replace-link",
        "--no-replace-link",
    }
    assert USAGE.startswith("Usage: pty [options]\n")
    assert f"Default {DEFAULT_WRITE_LIMIT}" in USAGE
    assert "Default bytes." in USAGE and "Default block." in USAGE
    assert "[default:" not in USAGE
    assert PtyDriver.NAME == "pty" and PtyDriver.USAGE == USAGE and PtyDriver.DESCRIPTION
    assert "How it works on Linux" in (ptymod.__doc__ or "")


@pytest.mark.parametrize(("arg", "value"), [("--write-limit=0", 0), ("--write-limit=4096", 4096)])
def test_write_limit_option(arg: str, value: int) -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    assert driver.options["--write-limit"] == DEFAULT_WRITE_LIMIT
    assert driver.config_arg(arg)
    assert driver.options["--write-limit"] == value
    assert not driver.config_arg("--baud=9600")


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "\uff11\uff12"])
def test_bad_write_limit_is_a_usage_error(value: str) -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        driver.config_arg(f"--write-limit={value}")
    assert info.value.text.startswith(("Invalid --write-limit value", "Invalid option value"))
    assert info.value.arg == f"--write-limit={value}"


def test_frame_and_slow_client_options() -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    assert driver.options["--frame"] is Frame.BYTES
    assert driver.options["--slow-client"] is SlowClient.BLOCK
    assert driver.config_arg("--frame=line") and driver.options["--frame"] is Frame.LINE
    assert driver.config_arg("--slow-client=DROP") and driver.options["--slow-client"] is SlowClient.DROP
    assert driver.config_arg("--slow-client=block") and driver.options["--slow-client"] is SlowClient.BLOCK
    # the mqtt driver's spellings of --frame
    assert driver.config_arg("--frame=b") and driver.options["--frame"] is Frame.BYTES
    assert driver.config_arg("--frame=L") and driver.options["--frame"] is Frame.LINE


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--frame=lines", "Invalid --frame value (bytes or line)"),
        ("--slow-client=lose", "Invalid --slow-client value (block or drop)"),
        ("--frame", "This option needs a value: write --frame=<value>"),
    ],
)
def test_bad_frame_and_slow_client_values_are_usage_errors(arg: str, text: str) -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        driver.config_arg(arg)
    assert info.value.text == text
    assert info.value.arg == arg


def test_default_port_keeps_bytes_and_block(tmp_path: Any) -> None:
    config = make_port(object(), tmp_path / "app1").sessions.config
    assert (config.frame, config.slow, config.limit) == (Frame.BYTES, SlowClient.BLOCK, DEFAULT_WRITE_LIMIT)


def test_disconnect_means_drop_with_a_warning(tmp_path: Any) -> None:
    """tcp-multi's value reaches the pty driver too (sticky options go to every driver)."""
    port = make_port(object(), tmp_path / "app1", argv=("--slow-client=disconnect", "--frame=line"))
    assert port.sessions.config.slow is SlowClient.DROP
    assert port.sessions.config.frame is Frame.LINE
    assert len(port.warnings) == 1 and "cannot close an application's end" in port.warnings[0]


def test_options_meant_for_tcp_multi_and_mqtt_ports_reach_the_pty_ports_after_them(tmp_path: Any) -> None:
    """Sticky options go to every driver (hub4com's rule): the values other drivers
    take must not stop start-up."""
    loop = asyncio.new_event_loop()
    try:
        cfg = build(
            [
                "--use-driver=tcp-multi",
                "--slow-client=disconnect",
                "--frame=line",
                "127.0.0.1:0",
                "--use-driver=pty",
                str(tmp_path / "a"),
                "--use-driver=mqtt",
                "--frame=b",
                "mqtt://127.0.0.1:1/x",
                "--use-driver=pty",
                "--slow-client=drop",
                str(tmp_path / "b"),
            ],
            loop,
        )
        a, b = cfg.hub.ports[1], cfg.hub.ports[3]
        assert isinstance(a, PtyPort) and isinstance(b, PtyPort)
        assert (a.sessions.config.frame, a.sessions.config.slow) == (Frame.LINE, SlowClient.DROP)
        assert a.warnings and not b.warnings
        assert (b.sessions.config.frame, b.sessions.config.slow) == (Frame.BYTES, SlowClient.DROP)
    finally:
        loop.close()


def test_existing_regular_file_is_refused_and_kept(tmp_path: Any) -> None:
    path = tmp_path / "app1"
    path.write_text("keep me")
    with pytest.raises(UsageError) as info:
        make_port(object(), path)
    assert "exists and is not a symlink" in str(info.value)
    assert info.value.arg == str(path)
    assert path.read_text() == "keep me"


def test_existing_directory_is_refused(tmp_path: Any) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError, match="not a symlink"):
        make_port(object(), tmp_path / "dir")


def test_missing_directory_is_refused(tmp_path: Any) -> None:
    with pytest.raises(UsageError, match="directory") as info:
        make_port(object(), tmp_path / "missing" / "app1")
    assert info.value.arg == str(tmp_path / "missing" / "app1")


def test_two_ports_cannot_share_a_link(tmp_path: Any) -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    driver.create_port(0, str(tmp_path / "a"), dict(driver.options))
    with pytest.raises(UsageError, match="already uses"):
        driver.create_port(1, str(tmp_path / "." / "a"), dict(driver.options))


def test_port_name_and_capabilities(tmp_path: Any) -> None:
    port = make_port(object(), tmp_path / "app1", index=2)
    assert port.name == "app1(2)"
    assert port.provides & In.MODEM == In.CTS | In.DSR | In.DCD
    assert port.provides & (In.RBR | In.RLC) == In.RBR | In.RLC
    assert port.accepts & (Out.SET_BR | Out.SET_LC) == Out.SET_BR | Out.SET_LC


# ---- link life cycle ----------------------------------------------------------------


def test_link_points_at_the_slave_and_goes_at_close(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        link = tmp_path / "app1"
        port = started(hub, link)
        try:
            assert os.path.islink(link)
            assert os.readlink(link) == port.slave_path
            assert port.slave_path.startswith("/dev/pts/")
            assert not port.connected and hub.msgs == []
        finally:
            port.close()
        assert not os.path.lexists(link)
        port.close()  # twice is harmless

    run(main())


def test_stale_symlink_is_replaced(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        os.symlink("/dev/pts/does-not-exist", link)
        port = started(FakeHub(), link)
        try:
            assert os.readlink(link) == port.slave_path
        finally:
            port.close()
        assert not os.path.lexists(link)

    run(main())


def test_close_leaves_a_link_that_is_no_longer_ours(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        port = started(FakeHub(), link)
        os.unlink(link)
        os.symlink("/dev/null", link)
        port.close()
        assert os.readlink(link) == "/dev/null"

    run(main())


def test_a_link_another_hub_holds_is_refused_naming_its_pid(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        os.symlink("/dev/pts/77", link)  # the other hub's link
        lock = os.open(f"{link}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(lock, b"4242\n")
            fcntl.flock(lock, fcntl.LOCK_EX)  # another open file: as another process would
            port = make_port(FakeHub(), link)
            with pytest.raises(UsageError, match=r"in use by another hub \(pid 4242\)") as info:
                port.start()
            assert info.value.arg == str(link)
            port.close()
            assert os.readlink(link) == "/dev/pts/77"
            assert os.path.exists(f"{link}.lock")
        finally:
            os.close(lock)

    run(main())


def test_a_killed_hubs_link_is_replaced_and_the_lock_goes_at_close(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        os.symlink("/dev/null", link)  # not a pty: replaced only because a hub's lock says so
        (tmp_path / "app1.lock").write_text("99999999\n")  # nobody holds it: its hub is gone
        port = started(FakeHub(), link)
        try:
            assert os.readlink(link) == port.slave_path
            assert (tmp_path / "app1.lock").read_text() == f"{os.getpid()}\n"
        finally:
            port.close()
        assert not os.path.lexists(link) and not os.path.lexists(tmp_path / "app1.lock")

    run(main())


def test_a_symlink_no_hub_made_is_refused_and_kept(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        os.symlink("/dev/ttyS0", link)  # the user's own link
        port = make_port(FakeHub(), link)
        with pytest.raises(UsageError, match=r"symlink to /dev/ttyS0 that no hub made.*--replace-link"):
            port.start()
        port.close()
        assert os.readlink(link) == "/dev/ttyS0"
        assert not os.path.lexists(tmp_path / "app1.lock")

    run(main())


def test_replace_link_takes_over_a_symlink_and_restores_it_at_close(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        by_id = tmp_path / "by-id"
        by_id.mkdir()
        link = by_id / "usb-u-blox_GNSS-if00"
        os.symlink("../../ttyACM0", link)  # as udev makes them: relative, here dangling
        port = started(FakeHub(), link, argv=("--replace-link",))
        try:
            assert os.readlink(link) == port.slave_path
            # the old target is on record before the link is replaced
            assert (by_id / "usb-u-blox_GNSS-if00.lock").read_text() == f"{os.getpid()}\n../../ttyACM0\n"
            fd = raw_open(link)
            os.close(fd)
        finally:
            port.close()
        assert os.readlink(link) == "../../ttyACM0"
        assert not os.path.lexists(by_id / "usb-u-blox_GNSS-if00.lock")
        assert sorted(os.listdir(by_id)) == ["usb-u-blox_GNSS-if00"]  # no temporary left

    run(main())


def test_a_killed_hubs_takeover_is_carried_over_and_restored(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "gps"
        os.symlink("/dev/pts/does-not-exist", link)  # the killed hub's pty
        (tmp_path / "gps.lock").write_text("99999999\n../../ttyUSB0\n")
        port = started(FakeHub(), link)  # even without --replace-link: the link was taken over
        try:
            assert os.readlink(link) == port.slave_path
            assert (tmp_path / "gps.lock").read_text() == f"{os.getpid()}\n../../ttyUSB0\n"
        finally:
            port.close()
        assert os.readlink(link) == "../../ttyUSB0"

    run(main())


def test_a_taken_over_link_that_changed_meanwhile_is_left_alone(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "gps"
        os.symlink("../../ttyUSB0", link)
        port = started(FakeHub(), link, argv=("--replace-link",))
        os.unlink(link)
        os.symlink("../../ttyUSB1", link)  # udev made it anew: the device came back
        port.close()
        assert os.readlink(link) == "../../ttyUSB1"

    run(main())


@pytest.mark.parametrize("kind", ["regular file", "device node"])
def test_replace_link_never_replaces_a_file_or_a_device(tmp_path: Any, kind: str) -> None:
    if kind == "regular file":
        path = tmp_path / "ttyUSB0"
        path.write_text("keep")
    else:
        path = "/dev/null"
    with pytest.raises(UsageError, match="exists and is not a symlink"):
        make_port(FakeHub.__new__(FakeHub), path, argv=("--replace-link",))
    assert os.path.exists(path) and not os.path.islink(path)


def test_replace_link_is_sticky_and_can_be_undone() -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    assert driver.options["--replace-link"] is False
    assert driver.config_arg("--replace-link") and driver.options["--replace-link"] is True
    assert driver.config_arg("--no-replace-link") and driver.options["--replace-link"] is False


def test_a_planted_lock_symlink_is_refused(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        victim = tmp_path / "victim"
        victim.write_text("keep")
        os.symlink(victim, tmp_path / "app1.lock")
        port = make_port(FakeHub(), tmp_path / "app1")
        with pytest.raises(UsageError, match=r"lock file .* is a symlink"):
            port.start()
        assert victim.read_text() == "keep"

    run(main())


def test_a_world_writable_directory_without_sticky_bit_is_warned_about(
    run: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o777)
        sticky = tmp_path / "sticky"
        sticky.mkdir()
        sticky.chmod(0o1777)
        with caplog.at_level(logging.WARNING, "drivers.pty"):
            for d in (shared, sticky):
                port = started(FakeHub(), d / "app1")
                port.close()
        warned = [r.getMessage() for r in caplog.records if "sticky bit" in r.getMessage()]
        assert len(warned) == 1 and str(shared) in warned[0]

    run(main())


def test_file_created_before_start_is_refused(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        link = tmp_path / "app1"
        port = make_port(FakeHub(), link)
        link.write_text("user data")
        with pytest.raises(UsageError, match="not a symlink"):
            port.start()
        assert link.read_text() == "user data"
        assert port._fd == -1
        port.close()
        assert link.read_text() == "user data"

    run(main())


# ---- open / close ---------------------------------------------------------------------


def test_open_is_connect_with_lines_on_and_close_is_disconnect(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.CTS | In.DSR | In.DCD | In.RI)
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            assert hub.msgs == [Connect(True), ModemStatus(LINES, LINES)]
            ser.close()
            await disconnected(hub, port)
            assert hub.msgs[2:] == [Connect(False), ModemStatus(0, LINES)]
        finally:
            port.close()

    run(main())


@pytest.mark.parametrize(("wanted", "extra"), [(In.DSR, [ModemStatus(Msr.DSR, Msr.DSR)]), (In.NONE, [])])
def test_modem_status_only_for_wanted_lines(
    run: Any, tmp_path: Any, wanted: In, extra: list[Message]
) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=wanted)
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            assert hub.msgs == [Connect(True), *extra]
            ser.close()
            await disconnected(hub, port)
        finally:
            port.close()

    run(main())


def test_ten_opens_and_closes(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            for i in range(1, 11):
                ser = app_open(tmp_path / "app1")
                await connected(hub, port, i)
                token = b"%d;" % i
                await asyncio.to_thread(ser.write, token)
                await hub.wait_for(partial(_ends_with, hub, token), f"data of app {i}")
                ser.close()
                await disconnected(hub, port, i)
            on_off = [m.on for m in hub.of(Connect)]
            assert on_off == [True, False] * 10
            assert hub.data() == b"".join(b"%d;" % i for i in range(1, 11))
            assert port.lost_total == 0
        finally:
            port.close()

    run(main())


def test_quick_writer_between_polls_is_seen(run: Any, tmp_path: Any) -> None:
    """`echo hi > link`: open, write, close long before the next poll."""

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.DSR | In.RBR)
        try:
            fd = os.open(tmp_path / "app1", os.O_WRONLY | os.O_NOCTTY)
            os.write(fd, b"hello\n")
            os.close(fd)
            await disconnected(hub, port)
            assert hub.data() == b"hello\n"
            assert [m.on for m in hub.of(Connect)] == [True, False]
        finally:
            port.close()

    run(main())


# ---- data -------------------------------------------------------------------------------

WATCHING = [pytest.param(In.DSR, id="plain"), pytest.param(In.DSR | In.RBR | In.RLC, id="packet-mode")]


@pytest.mark.parametrize("wanted", WATCHING)
def test_data_both_ways_with_every_byte_value(run: Any, tmp_path: Any, wanted: In) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=wanted)
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            pattern = bytes(range(256)) * 8 + b"\xff\xff\x00\xff"
            await asyncio.to_thread(ser.write, pattern)
            await hub.wait_for(lambda: len(hub.data()) >= len(pattern), "app data")
            assert hub.data() == pattern
            port.write(LineData(pattern[::-1]), 0)
            assert await asyncio.to_thread(ser.read, len(pattern)) == pattern[::-1]
            assert port.bytes_in == len(pattern) and port.bytes_out == len(pattern)
            ser.close()
        finally:
            port.close()

    run(main())


@pytest.mark.parametrize("wanted", WATCHING)
def test_one_megabyte_from_the_application(run: Any, tmp_path: Any, wanted: In) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=wanted)
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            blob = os.urandom(1 << 20)
            writer = asyncio.create_task(asyncio.to_thread(ser.write, blob))
            await hub.wait_for(lambda: port.bytes_in >= len(blob), "1 MiB", timeout_s=30)
            await writer
            assert hub.data() == blob
            ser.close()
            await disconnected(hub, port)
        finally:
            port.close()

    run(main())


def test_write_limit_zero_discards_everything(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", argv=("--write-limit=0",))
        try:
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"x" * 100), 0)
            assert port.lost_total == 100
            port.write(LineData(b"ping"), 0)
            os.write(fd, b"still readable")
            await hub.wait_for(lambda: hub.data() == b"still readable", "app data")
            assert await asyncio.to_thread(read_fd, fd, 1, POLL_INTERVAL_S) == b""
            os.close(fd)
        finally:
            port.close()

    run(main())


# ---- no stale data for a reopening application -----------------------------------------


def test_data_written_while_closed_is_dropped_and_counted(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            port.write(LineData(b"old" * 1000), 0)
            assert (port.unheard, port.lost_total) == (3000, 0)  # nobody there: unheard, not lost
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"fresh"), 0)
            assert await asyncio.to_thread(read_fd, fd, 5) == b"fresh"
            assert await asyncio.to_thread(read_fd, fd, 1, POLL_INTERVAL_S) == b""
            os.close(fd)
        finally:
            port.close()

    run(main())


@pytest.mark.parametrize("size", [5000, 100_000])
def test_data_the_last_application_did_not_read_is_dropped_and_counted(
    run: Any, tmp_path: Any, size: int
) -> None:
    """5000 bytes stay in the kernel; 100 kB also fill the port's own queue."""

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.DSR | In.RBR)
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"s" * size), 0)
            assert port.lost_total == 0
            ser.close()
            await disconnected(hub, port)
            assert port.lost_total == size
            assert port.queued_bytes() == 0
            # A plain open() does not flush input as pyserial does: it would see any backlog.
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port, 2)
            port.write(LineData(b"fresh"), 0)
            assert await asyncio.to_thread(read_fd, fd, 5) == b"fresh"
            os.close(fd)
        finally:
            port.close()

    run(main())


# ---- flow control -----------------------------------------------------------------------


def test_write_queue_watermarks(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", argv=("--write-limit=3000",))
        port.fc_sources = frozenset({0})
        try:
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            blob = os.urandom(64 * 1024)  # more than the kernel holds (about 20 KiB)
            port.write(LineData(blob), 0)
            assert port.queued_bytes() > port.high_water
            assert hub.of(FlowControl) == [FlowControl(True)]
            assert await asyncio.to_thread(read_fd, fd, len(blob)) == blob
            await hub.wait_for(lambda: hub.of(FlowControl)[-1] == FlowControl(False), "XON")
            assert port.queued_bytes() == 0
            assert port.lost_total == 0
            os.close(fd)
        finally:
            port.close()

    run(main())


def test_paused_reading_holds_input_until_resumed(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(FlowControl(True), 0)
            await asyncio.to_thread(ser.write, b"held")
            await asyncio.sleep(3 * POLL_INTERVAL_S)
            assert hub.data() == b""
            port.write(FlowControl(False), 0)
            await hub.wait_for(lambda: hub.data() == b"held", "held data")
            ser.close()
        finally:
            port.close()

    run(main())


def test_application_leaving_while_reading_is_paused(run: Any, tmp_path: Any) -> None:
    """Its last data still arrives, then the disconnect; nothing goes stale meanwhile."""

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(FlowControl(True), 0)
            port.write(LineData(b"u" * 1000), 0)  # never read by the application
            await asyncio.to_thread(ser.write, b"last words")
            ser.close()
            await hub.wait_for(lambda: port._gone, "the port noticing the close")
            assert port.lost_total == 1000
            port.write(LineData(b"y" * 10), 0)
            assert (port.lost_total, port.unheard) == (1000, 10)
            port.write(FlowControl(False), 0)
            await disconnected(hub, port)
            assert hub.data() == b"last words"
            assert hub.signals()[-2:] == [Connect(False), ModemStatus(0, Msr.DSR)]
        finally:
            port.close()

    run(main())


def test_new_application_while_reading_is_paused(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            ser = app_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(FlowControl(True), 0)
            ser.close()
            await hub.wait_for(lambda: port._gone, "the port noticing the close")
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port, 2)
            assert [m.on for m in hub.of(Connect)] == [True, False, True]
            port.write(FlowControl(False), 0)
            port.write(LineData(b"fresh"), 0)
            assert await asyncio.to_thread(read_fd, fd, 5) == b"fresh"
            os.close(fd)
            await disconnected(hub, port, 2)
        finally:
            port.close()

    run(main())


# ---- line framing and slow applications (--frame, --slow-client) -------------------------

#: Numbered NMEA-like sentences of different lengths.
SENTENCES = [b"$GPTXT,%05d,%s*00\r\n" % (i, b"x" * (i % 23)) for i in range(2000)]
END = b"$GPTXT,END*00\r\n"
PRIME = b"$PRIME*00\r\n"


def in_pieces(data: bytes, seed: int) -> list[bytes]:
    """`data` cut at random places (sentences get split), pieces of 1 to 3000 bytes."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 3000)
        out.append(data[i : i + n])
        i += n
    return out


def test_line_framing_an_application_starts_at_the_next_line(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", argv=("--frame=line",))
        try:
            unheard = b"$GPGGA,1*00\r\n$GPRMC,par"
            port.write(LineData(unheard), 0)  # nobody there: unheard
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"t of the RMC*00\r\n$GPVTG,"), 0)
            port.write(LineData(b"1*00\r\n"), 0)
            assert await asyncio.to_thread(read_fd_until, fd, b"\n") == b"$GPVTG,1*00\r\n"
            assert await asyncio.to_thread(read_fd, fd, 1, POLL_INTERVAL_S) == b""
            # skipping to the first line start is not a loss; the data nobody held the link for is unheard
            assert port.unheard == len(unheard)
            assert port.lost_total == 0 and port.sessions.dropped_bytes == 0
            assert port.bytes_out == len(b"$GPVTG,1*00\r\n")
            os.close(fd)
            await disconnected(hub, port)
            # the next application opens at a line boundary: it starts at once
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port, 2)
            port.write(LineData(b"$GPGSA*00\r\n"), 0)
            assert await asyncio.to_thread(read_fd_until, fd, b"\n") == b"$GPGSA*00\r\n"
            os.close(fd)
        finally:
            port.close()

    run(main())


def test_buffer_gives_the_next_application_whole_lines_kept_while_closed(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", argv=("--frame=line", "--buffer=30"))
        try:
            port.write(LineData(b"RMC*00\r\n$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPVTG,3*00\r\n"), 0)
            # the partial first line is skipped; GGA and RMC fit (26 B), VTG does not
            assert port.unheard == 8 + 13 and port.bytes_out == 26
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"$GPGSA,4*00\r\n"), 0)
            want = b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPGSA,4*00\r\n"
            assert await asyncio.to_thread(read_fd_until, fd, b"GSA,4*00\r\n") == want
            os.close(fd)
            await disconnected(hub, port)
            # kept again for the next application, from a line start
            port.write(LineData(b"$GPGGA,5*00\r\n"), 0)
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port, 2)
            assert await asyncio.to_thread(read_fd_until, fd, b"\n") == b"$GPGGA,5*00\r\n"
            assert port.lost_total == 0
            os.close(fd)
        finally:
            port.close()

    run(main())


def test_buffer_option_values() -> None:
    driver = PtyDriver(object())  # type: ignore[arg-type]
    assert driver.options["--buffer"] == 0
    assert driver.config_arg("--buffer=4096") and driver.options["--buffer"] == 4096
    with pytest.raises(UsageError, match="Invalid --buffer value"):
        driver.config_arg("--buffer=4k")


def test_line_framing_nothing_before_the_first_line_end(run: Any, tmp_path: Any) -> None:
    """Where the device's first line starts is unknown: a first application waits for a line end."""

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", argv=("--frame=line",))
        try:
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"17,W,1*4A\r\n$GPGGA,2*00\r\n"), 0)
            assert await asyncio.to_thread(read_fd_until, fd, b"\n") == b"$GPGGA,2*00\r\n"
            assert port.lost_total == 0
            os.close(fd)
        finally:
            port.close()

    run(main())


def test_line_framing_drop_loses_whole_lines_and_counts_them(
    run: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An application that does not read: the kernel and its queue fill, then whole
    sentences are dropped, counted; when it reads again it gets whole sentences only."""
    stream = b"".join(SENTENCES)

    async def main() -> None:
        hub = FakeHub()
        link = tmp_path / "app1"
        port = started(hub, link, argv=("--frame=line", "--slow-client=drop", "--write-limit=4096"))
        port.fc_sources = frozenset({0})  # even along a flow-control route, drop throttles nobody
        try:
            port.write(LineData(PRIME), 0)  # nobody there: unheard; the stream is at a line start
            fd = raw_open(link)
            await connected(hub, port)
            for piece in in_pieces(stream, seed=7):
                port.write(LineData(piece), 0)
            dropped = port.lost_total
            assert dropped > 0 and port.sessions.dropped_lines > 0
            assert hub.of(FlowControl) == []
            assert port.queued_bytes() <= 4096 + 3000
            assert "not reading" in port.status()
            # the application reads again: the queue drains, then new sentences go straight through
            reader = asyncio.ensure_future(asyncio.to_thread(read_fd_until, fd, END))
            await hub.wait_for(lambda: port.queued_bytes() == 0, "the queue to drain")
            port.write(LineData(END), 0)
            got = await reader
            assert got.endswith(END)
            body = got[: -len(END)].splitlines(keepends=True)
            index = {line: i for i, line in enumerate(SENTENCES)}
            assert all(line in index for line in body), "a sentence was cut"
            order = [index[line] for line in body]
            assert order[0] == 0 and order == sorted(set(order))
            missing = len(SENTENCES) - len(body)
            assert missing == port.sessions.dropped_lines
            assert len(stream) - sum(map(len, body)) == dropped == port.sessions.dropped_bytes
            assert port.bytes_out == len(got)
            assert f"dropped {missing} lines" in port.status()
            os.close(fd)
            await disconnected(hub, port)
            return missing

        finally:
            port.close()

    with caplog.at_level(logging.INFO, logger="drivers.pty"):
        missing = run(main())
    closed = [r.getMessage() for r in caplog.records if "the application closed" in r.getMessage()]
    assert len(closed) == 1 and f"dropped {missing} lines" in closed[0], closed


def test_line_framing_block_is_lossless_along_a_flow_control_route(run: Any, tmp_path: Any) -> None:
    # About 29 kB: more than the kernel holds (16 to 24 KiB) plus the queue's high water,
    # less than that plus the queue's hard limit (4 x 4096).
    stream = b"".join(SENTENCES[:1000])

    async def main() -> None:
        hub = FakeHub()
        link = tmp_path / "app1"
        port = started(hub, link, argv=("--frame=line", "--write-limit=4096"))
        port.fc_sources = frozenset({0})
        try:
            port.write(LineData(PRIME), 0)
            fd = raw_open(link)
            await connected(hub, port)
            for piece in in_pieces(stream, seed=3):
                port.write(LineData(piece), 0)
            assert hub.of(FlowControl) == [FlowControl(True)]
            assert await asyncio.to_thread(read_fd, fd, len(stream)) == stream
            await hub.wait_for(lambda: hub.of(FlowControl)[-1] == FlowControl(False), "XON")
            assert port.lost_total == 0 and port.sessions.dropped_bytes == 0
            assert port.unheard == len(PRIME)
            os.close(fd)
        finally:
            port.close()

    run(main())


def test_drop_sends_no_xoff_and_bytes_framing_cuts_anywhere(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        link = tmp_path / "app1"
        port = started(hub, link, argv=("--slow-client=drop", "--write-limit=3000"))
        port.fc_sources = frozenset({0})
        try:
            fd = raw_open(link)
            await connected(hub, port)
            blob = os.urandom(64 * 1024)
            port.write(LineData(blob), 0)  # the kernel takes part, the queue the rest
            port.write(LineData(b"more"), 0)  # the queue is full: dropped
            assert port.lost_total == 4 and port.sessions.dropped_lines == 0
            assert hub.of(FlowControl) == []
            assert await asyncio.to_thread(read_fd, fd, len(blob)) == blob
            os.close(fd)
        finally:
            port.close()

    run(main())


# ---- line settings ----------------------------------------------------------------------


def test_application_line_settings_are_reported(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.DSR | In.RBR | In.RLC)
        try:
            ser = app_open(tmp_path / "app1", baudrate=19200)
            await connected(hub, port)
            # Current settings at connect (pyserial may set them just after the open).
            await hub.wait_for(lambda: hub.of(RemoteBaudStatus)[-1:] == [RemoteBaudStatus(19200)], "19200")
            assert hub.of(RemoteLcStatus)[-1] == RemoteLcStatus(LineControl(stop_bits=StopBits.ONE))
            ser.baudrate = 9600
            await hub.wait_for(lambda: RemoteBaudStatus(9600) in hub.msgs, "RBR 9600")
            ser.stopbits = serial.STOPBITS_TWO
            await hub.wait_for(lambda: hub.of(RemoteLcStatus)[-1].lc.stop_bits == StopBits.TWO, "2 stop bits")
            assert hub.of(RemoteLcStatus)[-1] == RemoteLcStatus(LineControl(None, None, StopBits.TWO))
            ser.baudrate = 250000  # a custom rate (BOTHER)
            await hub.wait_for(lambda: RemoteBaudStatus(250000) in hub.msgs, "RBR 250000")
            # Setting the same termios again is not a change.
            before = hub.signals()
            termios.tcsetattr(ser.fileno(), termios.TCSANOW, termios.tcgetattr(ser.fileno()))
            await sync_with_app(hub, ser, b"sync")
            assert hub.signals() == before
            ser.close()
        finally:
            port.close()

    run(main())


def test_line_settings_without_termios2(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where TCGETS2 is unknown, standard rates still work through tcgetattr."""
    monkeypatch.setattr(ptymod, "_TERMIOS2", None)

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.RBR | In.RLC)
        try:
            ser = app_open(tmp_path / "app1", baudrate=4800)
            await connected(hub, port)
            await hub.wait_for(lambda: hub.of(RemoteBaudStatus)[-1:] == [RemoteBaudStatus(4800)], "4800")
            ser.baudrate = 9600
            ser.stopbits = serial.STOPBITS_TWO
            await hub.wait_for(lambda: RemoteBaudStatus(9600) in hub.msgs, "RBR 9600")
            await hub.wait_for(lambda: hub.of(RemoteLcStatus)[-1].lc.stop_bits == StopBits.TWO, "2 stop bits")
            port.write(SetBaud(1200), 0)
            assert termios.tcgetattr(ser.fileno())[5] == termios.B1200
            ser.close()
        finally:
            port.close()

    asyncio.run(main())


def test_settings_are_not_reported_unless_wanted(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.DSR)
        try:
            ser = app_open(tmp_path / "app1", baudrate=19200)
            await connected(hub, port)
            ser.baudrate = 9600
            await sync_with_app(hub, ser, b"sync")
            assert hub.signals() == [Connect(True), ModemStatus(Msr.DSR, Msr.DSR)]
            # Without packet mode the slave keeps canonical-mode processing available.
            assert not termios.tcgetattr(ser.fileno())[3] & ptymod._EXTPROC
            ser.close()
        finally:
            port.close()

    run(main())


def test_application_clearing_extproc_is_still_watched(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.RBR)
        try:
            ser = app_open(tmp_path / "app1", baudrate=19200)
            await connected(hub, port)
            attrs = termios.tcgetattr(ser.fileno())
            attrs[3] = 0
            termios.tcsetattr(ser.fileno(), termios.TCSANOW, attrs)
            await sync_with_app(hub, ser, b"sync")
            assert termios.tcgetattr(ser.fileno())[3] & ptymod._EXTPROC
            ser.baudrate = 2400
            await hub.wait_for(lambda: RemoteBaudStatus(2400) in hub.msgs, "RBR 2400")
            ser.close()
        finally:
            port.close()

    run(main())


def test_set_baud_and_line_control_reach_the_application_without_feedback(
    run: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.RBR | In.RLC)
        try:
            ser = app_open(tmp_path / "app1", baudrate=19200)
            await connected(hub, port)
            await hub.wait_for(lambda: hub.of(RemoteBaudStatus)[-1:] == [RemoteBaudStatus(19200)], "19200")
            before = hub.signals()
            port.write(SetBaud(4800), 0)
            port.write(SetLineControl(LineControl(stop_bits=StopBits.TWO)), 0)
            attrs = termios.tcgetattr(ser.fileno())
            assert attrs[4] == attrs[5] == termios.B4800
            assert attrs[2] & termios.CSTOPB
            port.write(SetBaud(250000), 0)
            assert read_line_settings(ser.fileno())[0].baud == 250000
            await sync_with_app(hub, ser, b"sync")
            assert hub.signals() == before
            # The application's own change after ours is reported again.
            ser.baudrate = 9600
            await hub.wait_for(lambda: hub.of(RemoteBaudStatus)[-1:] == [RemoteBaudStatus(9600)], "9600")
            ser.close()
        finally:
            port.close()

    with caplog.at_level(logging.WARNING, logger="drivers.pty"):
        run(main())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "msg", [SetBaud(9600), SetLineControl(LineControl(stop_bits=StopBits.TWO))], ids=["baud", "stop-bits"]
)
def test_setting_the_value_the_slave_has_does_not_undo_the_applications_change(
    run: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, msg: Message
) -> None:
    """The RFC 2217 server's answer echoes the settings the port reported; applying
    it must not write termios, or an application changing the baud rate at that
    moment has its change overwritten (the port reads termios, the application
    sets 57600, the port writes the old settings back) and never reported."""

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1", wanted=In.RBR | In.RLC)
        try:
            ser = app_open(tmp_path / "app1", baudrate=9600, stopbits=serial.STOPBITS_TWO)
            await connected(hub, port)
            await hub.wait_for(lambda: hub.of(RemoteBaudStatus)[-1:] == [RemoteBaudStatus(9600)], "9600")
            await sync_with_app(hub, ser, b"sync")
            real_read = ptymod.read_line_settings

            def read_then_the_application_changes(fd: int) -> Any:
                # The application's tcsetattr lands just after the port read termios.
                got = real_read(fd)
                monkeypatch.setattr(ptymod, "read_line_settings", real_read)
                ser.baudrate = 57600
                return got

            monkeypatch.setattr(ptymod, "read_line_settings", read_then_the_application_changes)
            port.write(msg, 0)
            await hub.wait_for(lambda: RemoteBaudStatus(57600) in hub.msgs, "RBR 57600")
            assert termios.tcgetattr(ser.fileno())[5] == termios.B57600
            ser.close()
        finally:
            port.close()

    run(main())


def test_data_bits_and_parity_are_ignored_with_one_warning(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        port = started(FakeHub(), tmp_path / "app1")
        try:
            for _ in range(2):
                port.write(SetLineControl(LineControl(7, Parity.EVEN, StopBits.TWO)), 0)
            fd = raw_open(tmp_path / "app1")
            cflag = termios.tcgetattr(fd)[2]
            assert cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB
            assert cflag & termios.CSTOPB
            os.close(fd)
        finally:
            port.close()

    with caplog.at_level(logging.WARNING, logger="drivers.pty"):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "8 data bits and no parity" in warnings[0]


def test_settings_persist_for_the_next_application(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            port.write(SetBaud(57600), 0)
            fd = raw_open(tmp_path / "app1")
            attrs = termios.tcgetattr(fd)
            assert attrs[5] == termios.B57600
            assert not attrs[3] & (termios.ICANON | termios.ECHO)  # raw mode
            os.close(fd)
        finally:
            port.close()

    run(main())


# ---- purge ----------------------------------------------------------------------------


def test_purge_drops_queued_output_without_counting_it(run: Any, tmp_path: Any) -> None:
    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            fd = raw_open(tmp_path / "app1")
            await connected(hub, port)
            port.write(LineData(b"p" * 64 * 1024), 0)
            assert port.queued_bytes() > 0
            port.write(PurgeTx(), 0)
            assert port.queued_bytes() == 0
            assert port.lost_total == 0
            os.close(fd)
        finally:
            port.close()

    run(main())


# ---- exclusive mode (TIOCEXCL) outlives the application's close ------------------------


def _unprivileged_open(path: str) -> str:
    """Open `path` as user nobody; return "ok" or the error."""
    code = f"import os; os.close(os.open({path!r}, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)); print('ok')"
    result = subprocess.run(
        ["/usr/bin/python3", "-c", code], capture_output=True, text=True, user=65534, group=65534, timeout=30
    )
    return (result.stdout + result.stderr).strip().splitlines()[-1]


def test_exclusive_mode_does_not_lock_out_the_next_application(run: Any, tmp_path: Any) -> None:
    if os.geteuid() == 0 and not shutil.which("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3 to open the pty as an unprivileged user")

    async def main() -> None:
        hub = FakeHub()
        port = started(hub, tmp_path / "app1")
        try:
            fd = raw_open(tmp_path / "app1")
            fcntl.ioctl(fd, termios.TIOCEXCL)
            await connected(hub, port)
            os.close(fd)
            await disconnected(hub, port)
            if os.geteuid() == 0:
                # Root ignores TIOCEXCL; an ordinary user is what it locks out.
                os.chmod(port.slave_path, 0o666)
                assert await asyncio.to_thread(_unprivileged_open, port.slave_path) == "ok"
            else:
                os.close(raw_open(tmp_path / "app1"))
        finally:
            port.close()

    run(main())


def test_pty_is_replaced_when_exclusive_mode_keeps_the_hub_out(
    run: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without root the hub cannot open a slave left in exclusive mode: it makes a new pty."""

    async def main() -> None:
        hub = FakeHub()
        link = tmp_path / "app1"
        port = started(hub, link, wanted=In.DSR | In.RBR)
        real_open = os.open
        old_path = port.slave_path

        def busy_open(path: Any, flags: int, *args: Any) -> int:
            if path == old_path:
                raise OSError(errno.EBUSY, "Device or resource busy")
            return real_open(path, flags, *args)

        try:
            port.write(SetBaud(57600), 0)
            ser = app_open(link, baudrate=57600)
            await connected(hub, port)
            monkeypatch.setattr(ptymod.os, "open", busy_open)
            ser.close()
            await disconnected(hub, port)
            monkeypatch.undo()
            assert port.slave_path != old_path
            assert os.readlink(link) == port.slave_path
            assert not os.path.exists(old_path)
            fd = raw_open(link)
            await connected(hub, port, 2)
            assert termios.tcgetattr(fd)[5] == termios.B57600  # settings carried over
            port.write(LineData(b"new pty"), 0)
            assert await asyncio.to_thread(read_fd, fd, 7) == b"new pty"
            os.write(fd, b"back")
            await hub.wait_for(lambda: hub.data() == b"back", "data from the new pty")
            os.close(fd)
            await disconnected(hub, port, 2)
        finally:
            port.close()
        assert not os.path.lexists(link)

    run(main())
