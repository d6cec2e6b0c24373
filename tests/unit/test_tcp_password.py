"""--password-file on tcp and tcp-multi listeners and tcp clients, on real loopback
sockets (asyncio and uvloop loops)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from drivers.tcp import State, TcpPort
from hub import password as pw
from hub.messages import LineData
from hub.netsec import Verdict
from tests.tlscerts import Pki, pki_or_skip
from tests.unit import test_tcpmulti as multi
from tests.unit.test_tcp import (
    DEADLINE_S,
    SETTLE_S,
    FakeHub,
    close_all,
    close_writer,
    make_ports,
    open_client,
    port_of,
    read_exactly,
    run,
)
from tests.unit.test_tcp_security import client_ctx, listener_tls, tls_client

__all__ = ["run"]  # the fixture, imported for the tests here

PASSWORD = b"correct horse battery staple"


@pytest.fixture
def pwfile(tmp_path) -> str:
    f = tmp_path / "hub.pw"
    f.write_bytes(PASSWORD + b"\n")
    f.chmod(0o600)
    return str(f)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the hub closed or reset the connection (nothing was sent to us)."""
    try:
        return await asyncio.wait_for(reader.read(100), DEADLINE_S + pw.REFUSE_DELAY_S) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def listener(hub: FakeHub, pwfile: str, *extra: str) -> TcpPort:
    (port,) = make_ports(hub, "--interface=127.0.0.1", f"--password-file={pwfile}", *extra, "*0")
    port.start()
    return port


def test_the_right_password_lets_data_through_and_the_line_is_not_data(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile)
        try:
            reader, writer = await open_client(port_of(port.listen_address))
            writer.write(PASSWORD[:5])
            await asyncio.sleep(SETTLE_S)
            assert port.state is State.IDLE and hub.log == []  # nothing reaches the port yet
            writer.write(PASSWORD[5:] + b"\r\nfirst data")
            await hub.wait_for(lambda: hub.data(0) == b"first data", "the data after the password")
            port.write(LineData(b"answer"), 5)
            assert await read_exactly(reader, 6) == b"answer"
            assert PASSWORD not in hub.data(0)
            await close_writer(writer)
        finally:
            close_all([port])

    run(body)


@pytest.mark.parametrize(
    ("send", "why"),
    [
        (b"wrong\ndata that must not arrive", "wrong password"),
        (b"x" * 400, "password line too long"),
    ],
)
def test_wrong_passwords_are_refused_after_the_delay(
    run: Any, pwfile: str, send: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile)
        try:
            reader, writer = await open_client(port_of(port.listen_address))
            loop = asyncio.get_running_loop()
            start = loop.time()
            writer.write(send)
            assert await closed_by_peer(reader)
            assert loop.time() - start >= pw.REFUSE_DELAY_S - 0.05
            assert hub.log == [] and port.state is State.IDLE
            gate = port._listener.gate  # type: ignore[union-attr]
            assert gate.counts[Verdict.BAD_PASSWORD] == 1
            await close_writer(writer)
        finally:
            close_all([port])

    run(body)
    assert "refused 127.0.0.1:" in caplog.text and why in caplog.text
    assert PASSWORD.decode() not in caplog.text and "wrong\n" not in caplog.text


def test_slow_drip_and_silence_are_refused_at_the_timeout(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile, "--password-timeout=0.5")
        try:
            number = port_of(port.listen_address)
            silent_r, silent_w = await open_client(number)
            drip_r, drip_w = await open_client(number)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for b in PASSWORD[:8]:
                drip_w.write(bytes([b]))
                await asyncio.sleep(0.1)
            assert await closed_by_peer(drip_r) and await closed_by_peer(silent_r)
            # from the drip's connect (just before `start`) to the refusal
            assert loop.time() - start >= 0.5 + pw.REFUSE_DELAY_S - 0.25
            assert hub.log == []
            assert port._listener.gate.counts[Verdict.BAD_PASSWORD] == 2  # type: ignore[union-attr]
            for w in (silent_w, drip_w):
                await close_writer(w)
        finally:
            close_all([port])

    run(body)


def test_an_address_that_keeps_failing_is_refused_at_once(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile, "--max-connections=20")
        try:
            number = port_of(port.listen_address)
            clients = [await open_client(number) for _ in range(pw.MAX_FAILURES)]
            for _, w in clients:
                w.write(b"guess\n")
            for r, w in clients:
                assert await closed_by_peer(r)
                await close_writer(w)
            try:  # even the right password: the address is locked out, reset at once
                reader, writer = await open_client(number)
                writer.write(PASSWORD + b"\n")
                assert await closed_by_peer(reader)
                await close_writer(writer)
            except ConnectionResetError:
                pass
            gate = port._listener.gate  # type: ignore[union-attr]
            # refused at accept, before anything was read: no password verdict for it
            assert gate.counts[Verdict.LOCKED_OUT] == 1 and hub.log == []
            assert gate.counts[Verdict.BAD_PASSWORD] == pw.MAX_FAILURES
        finally:
            close_all([port])

    run(body)


def test_password_after_tls(run: Any, pwfile: str, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile, *listener_tls(pki))
        try:
            number = port_of(port.listen_address)
            reader, writer = await tls_client(number, client_ctx(pki))
            writer.write(PASSWORD + b"\nover tls")
            await hub.wait_for(lambda: hub.data(0) == b"over tls", "data over TLS")
            await close_writer(writer)
            reader, writer = await tls_client(number, client_ctx(pki))
            writer.write(b"nope\n")
            assert await closed_by_peer(reader)
            await close_writer(writer)
        finally:
            close_all([port])

    run(body)


def test_our_client_port_sends_the_password_to_our_listener(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = listener(hub, pwfile)
        (client,) = make_ports(
            hub, f"--password-file={pwfile}", f"*127.0.0.1:{port_of(server.listen_address)}"
        )
        try:
            client.start()
            await hub.wait_for(lambda: server.state is State.CONNECTED, "the client admitted")
            client.write(LineData(b"from the client"), 5)
            await hub.wait_for(lambda: hub.data(0) == b"from the client", "data at the listener")
            assert client.bytes_out == len(b"from the client")
        finally:
            close_all([client, server])

    run(body)


def test_closing_the_listener_drops_connections_checking_their_password(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = listener(hub, pwfile)
        reader, writer = await open_client(port_of(port.listen_address))
        writer.write(PASSWORD[:3])
        await asyncio.sleep(SETTLE_S)
        gate = port._listener.gate  # type: ignore[union-attr]
        port.close()
        assert await closed_by_peer(reader)
        assert gate.counts[Verdict.BAD_PASSWORD] == 0  # stopping is not a refusal
        await close_writer(writer)

    run(body)


# ---- tcp-multi ---------------------------------------------------------------------------


def test_tcp_multi_sessions_begin_after_the_password(run: Any, pwfile: str) -> None:
    async def body() -> None:
        hub = multi.FakeHub()
        port = await multi.started(hub, f"--password-file={pwfile}")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", multi.port_number(port)), DEADLINE_S
            )
            writer.write(PASSWORD[:4])
            await asyncio.sleep(SETTLE_S)
            assert len(port.sessions) == 0
            writer.write(PASSWORD[4:] + b"\nhello")
            await hub.wait_for(lambda: len(port.sessions) == 1, "a session")
            await hub.wait_for(lambda: hub.data() == b"hello", "the data after the password")
            bad_r, bad_w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", multi.port_number(port)), DEADLINE_S
            )
            bad_w.write(b"guess\nsneaky")
            assert await closed_by_peer(bad_r)
            assert len(port.sessions) == 1 and hub.data() == b"hello"
            assert port.gate.counts[Verdict.BAD_PASSWORD] == 1
            for w in (writer, bad_w):
                await close_writer(w)
        finally:
            port.close()

    run(body)
