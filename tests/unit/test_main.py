"""hub.main: the SIGHUP reload hook and the status line's counters."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hub.main import STOP_SIGNALS, Settings, _reload, status_line


def config(reload: Any = None) -> Settings:
    return Settings(reload=reload)


def test_sighup_without_a_hook_says_there_is_nothing_to_reload(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "hub"):
        _reload(config())
    assert [r.getMessage() for r in caplog.records] == [
        "SIGHUP: nothing to reload (the hub was started from the command line)"
    ]


def test_sighup_calls_the_hook_and_survives_its_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    _reload(config(lambda: calls.append(1)))
    assert calls == [1]

    def broken() -> None:
        raise RuntimeError("bad config")

    with caplog.at_level(logging.INFO, "hub"):
        _reload(config(broken))  # logged, not raised
    assert "reload failed; the hub runs on unchanged" in caplog.text
    assert "bad config" in caplog.text


def test_the_stop_signals() -> None:
    assert {s.name for s in STOP_SIGNALS} == {"SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1"}


class _Port:
    def __init__(self, name: str, lost: int = 0, unheard: int = 0):
        self.name, self.bytes_in, self.bytes_out = name, 1, 2
        self.lost_total, self.unheard = lost, unheard

    def status(self) -> str:
        return "ok"


class _Hub:
    ports = [_Port("TCP(1)", unheard=5), _Port("TCP(2)", lost=3)]


def test_status_line_shows_lost_and_unheard_apart() -> None:
    assert status_line(_Hub()) == (  # type: ignore[arg-type]
        "Status: TCP(1) ok, in 1 B, out 2 B, unheard 5 B (no connection)"
        " | TCP(2) ok, in 1 B, out 2 B, lost 3 B"
    )
