"""Every driver's snapshot(), port_state() and problem() through the real command-line compiler."""

from __future__ import annotations

import asyncio
import json
import os
import tty
from typing import Any

import pytest

from hub.cli import build
from hub.port import PortState
from tests.e2e.conftest import free_port


@pytest.fixture
def device() -> Any:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_snapshots_of_every_driver(tmp_path, device) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    try:
        _check_every_driver(loop, tmp_path, device)
    finally:
        loop.close()


def _check_every_driver(loop: asyncio.AbstractEventLoop, tmp_path: Any, device: str) -> None:
    dead = free_port()  # nobody listens here: the permanent client cannot connect
    cfg = build(
        [
            "--octs=off",
            device,
            "--use-driver=sim",
            "gps",
            "--use-driver=pty",
            str(tmp_path / "app"),
            "--use-driver=tcp",
            "--interface=127.0.0.1",
            f"{free_port()}",
            f"*127.0.0.1:{dead}",
            "--use-driver=tcp-multi",
            f"127.0.0.1:{free_port()}",
            "--use-driver=connector",
            "--connect=c1:c2",
            "c1",
            "c2",
            "--use-driver=mqtt",
            f"mqtt://127.0.0.1:{dead}/x",
        ],
        loop,
    )
    hub = cfg.hub
    mqtt = hub.ports[-1]
    for p in hub.ports[:-1]:
        p.start()  # not the MQTT port: it would need a broker task
    try:
        loop.run_until_complete(asyncio.sleep(0.05))
        snaps = {p.kind: p.snapshot() for p in hub.ports}
        assert json.loads(json.dumps(snaps)) == snaps
        states = {kind: s["state"] for kind, s in snaps.items()}
        assert states["serial"] == PortState.CONNECTED.value and snaps["serial"]["device"] == device
        assert snaps["serial"]["line"]["baud"] == 19200 and snaps["serial"]["line"]["rtscts"] is False
        assert states["sim"] == "connected"
        assert states["pty"] == "waiting" and snaps["pty"]["link"] == str(tmp_path / "app")
        assert states["tcp-multi"] == "waiting" and snaps["tcp-multi"]["sessions"] == []
        assert snaps["tcp-multi"]["gate"]["admitted"] == 0
        assert hub.ports[6].snapshot()["peers"] == ["c2(7)"] and hub.ports[7].snapshot()["peers"] == []
        listener, client = hub.ports[3], hub.ports[4]
        assert listener.port_state() is PortState.WAITING and listener.problem() is None
        assert listener.snapshot()["role"] == "listener" and listener.snapshot()["address"]
        assert client.snapshot()["role"] == "client"
        assert client.problem() == f"not connected to 127.0.0.1:{dead}"
        assert mqtt.port_state() is PortState.CONNECTING
        assert "not connected to the broker 127.0.0.1" in (mqtt.problem() or "")
        assert [p.problem() for p in hub.ports if p.kind in ("serial", "sim", "pty", "tcp-multi")] == [
            None
        ] * 4
    finally:
        hub.close()
        loop.run_until_complete(asyncio.sleep(0))
    assert {p.port_state() for p in hub.ports if p.kind in ("serial", "sim", "pty", "tcp-multi")} == {
        PortState.CLOSED
    }
