"""Usage: trace

The trace filter (IN and OUT) writes every message passing it, timestamped,
per port and per direction, with data as a hex and printable dump of 16 bytes
a line:

  <time> <port>-(<name>)->: <MSG> ...        read from the port (IN)
  <time> <port><-(<name>)-<source>: <MSG> ... about to be written (OUT)

Place it between other filters to watch one layer; name it to tell layers
apart (--create-filter=trace,tcp,TxM). Output goes to standard error unless
--trace-file= was given on the hub command line before --create-filter.

No options.
"""

from __future__ import annotations

import atexit
import sys
import time
from typing import Any, TextIO

from hub.filter import Filter
from hub.messages import (
    BreakStatus,
    Connect,
    FlowControl,
    LineData,
    LineStatus,
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Lsr,
    Message,
    ModemStatus,
    Msr,
    Pin,
    PurgeTx,
    PurgeTxIn,
    RemoteBaudStatus,
    RemoteFlowStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    SetLsr,
    SetPins,
)

__all__ = ["TraceFilter", "format_message"]

GLOBAL_USAGE = """\
Usage: trace [--trace-file=<path>]

Options:
  --trace-file=<path>  Send the output of trace filters created after this
                       option to <path> (appended). An empty path means
                       standard error again.
"""

_NAMES: dict[type, str] = {
    LineData: "LINE_DATA",
    Connect: "CONNECT",
    ModemStatus: "MODEM_STATUS",
    LineStatus: "LINE_STATUS",
    SetPins: "SET_PIN_STATE",
    RemoteBaudStatus: "RBR_STATUS",
    RemoteLcStatus: "RLC_STATUS",
    LocalBaudStatus: "LBR_STATUS",
    LocalLcStatus: "LLC_STATUS",
    BreakStatus: "BREAK_STATUS",
    SetBaud: "SET_BR",
    SetLineControl: "SET_LC",
    SetLsr: "SET_LSR",
    # flow-control settings are this hub's addition (RFC 2217 SET-CONTROL)
    RemoteFlowStatus: "RFLOW_STATUS",
    LocalFlowStatus: "LFLOW_STATUS",
    SetFlow: "SET_FLOW",
    FlowControl: "ADD_XOFF_XON",
    PurgeTxIn: "PURGE_TX_IN",
    PurgeTx: "PURGE_TX",
}
_FLAGS: dict[type, type] = {ModemStatus: Msr, LineStatus: Lsr, SetLsr: Lsr, SetPins: Pin}
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))
_files: dict[str, TextIO] = {}


def _bits(flag: type, bits: int) -> str:
    return " ".join(f.name or "" for f in flag if bits & f.value)  # type: ignore[attr-defined]


def _dump(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        lines.append(f"  {i:04X} | {chunk.hex(' ').upper():<47} | {chunk.translate(_PRINTABLE).decode()}")
    return "\n".join(lines)


def format_message(msg: Message) -> str:
    """hub4com-style text for one message, e.g. 'MODEM_STATUS SET[CTS] CLR[DSR]'."""
    t = type(msg)
    name = _NAMES.get(t, t.__name__)
    if t is LineData:
        data = msg.data  # type: ignore[union-attr]
        return f"{name} {len(data)} bytes\n{_dump(data)}" if data else f"{name} 0 bytes"
    if t in _FLAGS:
        value, mask = msg.value, msg.mask  # type: ignore[union-attr]
        flag = _FLAGS[t]
        return f"{name} SET[{_bits(flag, value & mask)}] CLR[{_bits(flag, ~value & mask)}]"
    if t in (Connect, BreakStatus):
        return f"{name} {'TRUE' if msg.on else 'FALSE'}"  # type: ignore[union-attr]
    if t is FlowControl:
        return f"{name} {'XOFF' if msg.xoff else 'XON'}"  # type: ignore[union-attr]
    if t in (RemoteBaudStatus, LocalBaudStatus, SetBaud):
        return f"{name} {msg.baud}"  # type: ignore[union-attr]
    if t in (RemoteLcStatus, LocalLcStatus, SetLineControl):
        return f"{name} {msg.lc}"  # type: ignore[union-attr]
    if t in (RemoteFlowStatus, LocalFlowStatus, SetFlow):
        return f"{name} {msg.flow}"  # type: ignore[union-attr]
    return name


def _open(path: str) -> TextIO:
    if path not in _files:
        f = open(path, "a", encoding="utf-8", buffering=1)
        _files[path] = f
        atexit.register(f.close)
    return _files[path]


class TraceFilter(Filter):
    NAME = "trace"
    DESCRIPTION = "Trace filter"
    USAGE = __doc__ or ""
    GLOBAL_USAGE = GLOBAL_USAGE

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> Any:
        path = sticky.get("--trace-file") or ""
        if path:
            try:
                _open(path)
            except OSError as exc:
                from hub.errors import UsageError

                raise UsageError(f"--trace-file={path}", f"Can't open trace file: {exc.strerror}") from None
        return path

    def _out(self) -> TextIO:
        return _open(self.config) if self.config else sys.stderr

    def _write(self, head: str, msg: Message) -> None:
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        self._out().write(f"{stamp} {head}: {format_message(msg)}\n")

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        self._write(f"{self.ctx.port_name}-({self.ctx.name})->", msg)
        out.append(msg)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        self._write(f"{self.ctx.port_name}<-({self.ctx.name})-{self.ctx.port_name_of(src)}", msg)
        out.append(msg)
