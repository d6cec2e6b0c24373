"""The scenarios, in the order they run. Add a scenario: write a module, list it here."""

from __future__ import annotations

from .base import Scenario
from .fanout import FanOut
from .latency import Latency
from .memory import IdleMemory
from .pty_tcp import PtyTcpThroughput
from .rate import MessageRate
from .rfc2217 import Rfc2217Throughput
from .service import ServiceScale
from .storm import ConnectionStorm
from .tcp_tcp import TcpTcpThroughput

__all__ = ["SCENARIOS", "Scenario"]

SCENARIOS: tuple[Scenario, ...] = (
    PtyTcpThroughput(),
    TcpTcpThroughput(),
    FanOut(),
    Latency(),
    MessageRate(),
    IdleMemory(),
    ConnectionStorm(),
    Rfc2217Throughput(),
    ServiceScale(),
)
