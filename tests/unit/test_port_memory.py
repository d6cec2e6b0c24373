"""What an idle listener slot costs (issue 15: under 2 KiB RSS per idle client).

1,000 `*PORT` slots are 1,000 TcpPorts: their attributes live in slots (no
per-port dict) and equal option values are one object, not one per port.
"""

from __future__ import annotations

from typing import Any

from hub.port import Port

from .fakes import FakePort, new_loop
from .test_tcp import make_ports


def test_a_tcp_port_has_no_instance_dict() -> None:
    # Every attribute Port and TcpPort set is declared in their __slots__ (else the
    # constructor would raise), so no port carries a dict of 70 keys.
    client, listener = make_ports(None, "--interface=127.0.0.1", "*host:1", "*0")  # type: ignore[arg-type]
    for port in (client, listener):
        assert not hasattr(port, "__dict__")


def test_listener_slots_share_their_option_values() -> None:
    ports = make_ports(None, "--interface=127.0.0.1", "--keepalive=30", "*7000", "*7000", "*7000")  # type: ignore[arg-type]
    for name in ("address", "interface", "keepalive", "policy", "warnings", "fc_sources"):
        assert len({id(getattr(p, name)) for p in ports}) == 1, name
    assert ports[0].keepalive.idle_s == 30
    assert all(p._pending is None and p._held is None for p in ports)  # no empty lists either


def test_a_port_subclass_without_slots_keeps_a_dict() -> None:
    """Other drivers are unaffected: their own attributes go into their __dict__."""
    port: Any = FakePort(_Hub(), 0, "p", {})
    port.anything = 1
    assert vars(port) and port.anything == 1
    assert isinstance(port, Port) and port.observer is False and port.gate_in is None


class _Hub:
    loop = new_loop()

    def received(self, port: int, msgs: list[Any]) -> None:
        pass


def test_routes_to_all_share_one_writer_per_port() -> None:
    """--route=All:All: every port's fast path lists the others, each by one shared
    bound method (a method object per entry was 64 MB at 1,000 ports)."""
    from .test_datapath import make

    hub = make(["--route=All:All", "a", "b", "c", "d"]).hub
    writers = [w for direct in hub._direct for w in direct]
    assert len(writers) == 12  # four ports, three destinations each
    assert len({id(w) for w in writers}) == 4
