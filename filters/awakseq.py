"""Connect on awakening sequence filter: connect when the port sends a given sequence.

Usage: awakseq [options]

Attach it to the source port (IN and OUT methods). While waiting, the data read
from the port is swallowed and searched for the awakening sequence. When the
sequence has arrived, the filter reports CONNECT(TRUE), followed by the data
after the sequence; the sequence and everything before it are not forwarded.
The port's own CONNECT(TRUE) is discarded; its CONNECT(FALSE) is passed on only
after we reported CONNECT(TRUE), and it starts waiting again.

CONNECT messages routed to this port are counted. When the count drops to 0
(for example the TCP connection we opened was closed), the filter reports
CONNECT(FALSE) if it had connected, and starts waiting again.

Options:
  --awak-seq=<s>  The awakening sequence (the bytes of <s>). When not given,
                  the first byte read connects.

Example (one command line): wait for "aaa" from /dev/ttyS0, then connect to 192.0.2.1:1111.
  hub4com --create-filter=awakseq:"--awak-seq=aaa" --add-filters=0:awakseq
    /dev/ttyS0 --use-driver=tcp 192.0.2.1:1111
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from hub.filter import Filter, FilterContext
from hub.messages import Connect, LineData, Message

__all__ = ["AwakSeqFilter", "SequenceFinder"]

_CONNECT = Connect(True)
_DISCONNECT = Connect(False)


class SequenceFinder:
    """Finds the first occurrence of `seq` in a stream fed in chunks.

    It keeps the last len(seq)-1 bytes seen, so an occurrence split across
    chunks, or overlapping a partial one (``aab`` in ``aaab``), is found.
    """

    __slots__ = ("_keep", "_seq", "_tail")

    def __init__(self, seq: bytes):
        self._seq = seq
        self._keep = max(len(seq) - 1, 0)
        self._tail = b""

    def reset(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> int:
        """Search `data` as the continuation of the stream.

        Returns the offset in `data` just past the first occurrence, or -1 if
        the sequence has not arrived yet (the stream's tail is then kept).
        """
        if not self._seq:
            return 0
        buf = self._tail + data if self._tail else data
        i = buf.find(self._seq)
        if i < 0:
            self._tail = buf[len(buf) - self._keep :] if len(buf) > self._keep else buf
            return -1
        # No occurrence lies wholly in the old tail, so it ends inside `data`.
        end = i + len(self._seq) - len(self._tail)
        self._tail = b""
        return end


class AwakSeqFilter(Filter):
    NAME: ClassVar[str] = "awakseq"
    DESCRIPTION: ClassVar[str] = "Connect on awakening sequence filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> bytes:
        """The awakening sequence as bytes (the argument's bytes, as given on the command line)."""
        return os.fsencode(str(options.get("--awak-seq", "")))

    def __init__(self, ctx: FilterContext, config: bytes) -> None:
        super().__init__(ctx, config)
        self._finder = SequenceFinder(config)
        #: True while data is swallowed and searched for the sequence.
        self.waiting = True
        #: True after we reported CONNECT(TRUE) and not yet CONNECT(FALSE).
        self.connected = False
        #: CONNECT(TRUE) minus CONNECT(FALSE) routed to this port, never below 0.
        self.connections = 0

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        t = type(msg)
        if t is LineData:
            assert isinstance(msg, LineData)
            if not self.waiting or not msg.data:
                out.append(msg)
                return
            end = self._finder.feed(msg.data)
            if end < 0:
                return  # swallowed while waiting
            self.waiting = False
            self.connected = True
            out.append(_CONNECT)
            if end == 0:
                out.append(msg)
            elif end < len(msg.data):
                out.append(LineData(msg.data[end:]))
        elif t is Connect:
            assert isinstance(msg, Connect)
            if msg.on:
                return  # ours replaces it
            if self.connected:
                self.connected = False
                out.append(msg)
            self._rearm()
        else:
            out.append(msg)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        out.append(msg)
        if type(msg) is Connect:
            assert isinstance(msg, Connect)
            if msg.on:
                self.connections += 1
                return
            if self.connections > 0:
                self.connections -= 1
            if self.connections == 0:
                if self.connected:
                    # hub4com re-armed without this, so the next match sent a
                    # second CONNECT(TRUE) with no CONNECT(FALSE) in between.
                    self.connected = False
                    self.ctx.send_in([_DISCONNECT])
                self._rearm()

    def _rearm(self) -> None:
        self.waiting = True
        self._finder.reset()
