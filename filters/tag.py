"""Tag filter: carry several streams over one link as <tag> <byte> pairs.

Usage: tag [options]

Attach it to the port side of a multiplexed link (IN and OUT methods): the link
port is routed to every sub-channel port, and each sub-channel has its own tag.
IN: every data byte b read from the port becomes the pair <tag> b.
OUT: the data sent to the port is read as pairs <t> b, and only the b whose t
is this tag are kept. The pair alignment carries over from message to message.
Use the tag-sync filter on the link port to re-align after data loss.

Options:
  --tag=<n>  This port's tag, a number from 0 to 254 (required).

Example (one command line): carry two serial ports over one TCP link.
  hub4com --create-filter=tag,t1:"--tag=1" --create-filter=tag,t2:"--tag=2"
    /dev/ttyS0 /dev/ttyS1 --add-filters=0:t1 --add-filters=1:t2 --use-driver=tcp
    *5555 --route=0,1:2 --route=2:0,1
"""

from __future__ import annotations

from itertools import compress
from typing import Any, ClassVar

from hub.errors import UsageError
from hub.filter import Filter, FilterContext
from hub.messages import Connect, LineData, Message

__all__ = ["TagDemux", "TagFilter", "TagSyncFilter", "interleave", "parse_byte_option"]

_CONNECT = Connect(True)

#: Values a tag or sync byte may take (255 is reserved, as in hub4com).
MAX_TAG = 254


def parse_byte_option(options: dict[str, Any], name: str) -> int:
    """The mandatory option `name` as a number 0..254. Raises UsageError."""
    value = options.get(name)
    if value is None:
        raise UsageError(f"{name}=<0..{MAX_TAG}>", "Missing mandatory option")
    text = str(value)
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_TAG:
        raise UsageError(f"{name}={text}", f"Invalid value (expected a number from 0 to {MAX_TAG})")
    return int(text)


def interleave(tag: int, data: bytes) -> bytes:
    """Return `data` with `tag` before every byte."""
    buf = bytearray(2 * len(data))
    buf[0::2] = bytes((tag,)) * len(data)
    buf[1::2] = data
    return bytes(buf)


class TagDemux:
    """Keeps the bytes of one tag from a stream of <t> b pairs fed in chunks."""

    __slots__ = ("_mark", "_pending", "_tag")

    def __init__(self, tag: int):
        self._tag = tag
        #: translate() table mapping this tag to 1 and every other byte to 0.
        self._mark = bytes(int(i == tag) for i in range(256))
        #: None: a tag comes next; True/False: a value comes next, ours or not.
        self._pending: bool | None = None

    def feed(self, data: bytes) -> bytes:
        """Return the values of this tag in `data`."""
        head = b""
        start = 0
        if self._pending is not None and data:
            if self._pending:
                head = data[:1]
            start = 1
            self._pending = None
        end = start + (len(data) - start) // 2 * 2
        if end < len(data):
            self._pending = data[-1] == self._tag
        tags = data[start:end:2]
        values = data[start + 1 : end : 2]
        mine = tags.count(self._tag)
        if mine == len(tags):
            kept = values
        elif mine == 0:
            kept = b""
        else:
            kept = bytes(compress(values, tags.translate(self._mark)))
        return head + kept if head else kept


class TagFilter(Filter):
    NAME: ClassVar[str] = "tag"
    DESCRIPTION: ClassVar[str] = "Tag filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> int:
        """The tag. Raises UsageError if --tag is missing or not 0..254."""
        return parse_byte_option(options, "--tag")

    def __init__(self, ctx: FilterContext, config: int) -> None:
        super().__init__(ctx, config)
        self.tag = config
        self._demux = TagDemux(config)

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        if type(msg) is LineData and msg.data:
            out.append(LineData(interleave(self.tag, msg.data)))
        else:
            out.append(msg)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        if type(msg) is LineData and msg.data:
            kept = self._demux.feed(msg.data)
            if kept:
                out.append(LineData(kept))
        else:
            out.append(msg)


_TAG_SYNC_USAGE = """Tag synchronization filter: re-align a tag-multiplexed link after data loss.

Usage: tag-sync [options]

Attach it to the link port of a tag-multiplexed link (IN and OUT methods), on
both ends. The sync value must differ from every tag used on the link.
OUT: a sync byte is sent before the first tag, then before every n-th tag (with
a period of 0, never again). The count restarts when the link port reports
CONNECT(TRUE), so a reconnected link starts with a sync byte.
IN: a byte equal to the sync value is dropped where a tag is expected. A reader
that lost a byte reads the sync byte as a value, and the next byte as a tag
again: it is re-aligned.

Options:
  --sync=<n>    The sync value, a number from 0 to 254 (required).
  --period=<n>  Send the sync byte before every n-th tag; 0 (the default) sends
                it only before the first one.
"""


class TagSyncFilter(Filter):
    NAME: ClassVar[str] = "tag-sync"
    DESCRIPTION: ClassVar[str] = "Tag synchronization filter"
    USAGE: ClassVar[str] = _TAG_SYNC_USAGE

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> tuple[int, int]:
        """(sync, period). Raises UsageError for a missing --sync or a bad value."""
        sync = parse_byte_option(options, "--sync")
        period = str(options.get("--period", "0"))
        if not (period.isascii() and period.isdigit()):
            raise UsageError(f"--period={period}", "Invalid period (expected a number of tags, 0 or more)")
        return sync, int(period)

    def __init__(self, ctx: FilterContext, config: tuple[int, int]) -> None:
        super().__init__(ctx, config)
        self.sync, self.period = config
        self._sync_byte = bytes((self.sync,))
        #: IN: True when the next byte read is at a tag position.
        self._in_tag_next = True
        #: OUT: True when the next byte sent is at a tag position.
        self._out_tag_next = True
        #: OUT: tags sent since the last sync, modulo the period (0: a sync is due).
        self._out_count = 0

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        t = type(msg)
        if t is LineData:
            assert isinstance(msg, LineData)
            data = self._strip(msg.data)
            if data is msg.data:
                out.append(msg)
            elif data:
                out.append(LineData(data))
            return
        if t is Connect and msg == _CONNECT:
            self._out_count = 0  # a (re)connected link starts with a sync byte
        out.append(msg)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        if type(msg) is LineData:
            assert isinstance(msg, LineData)
            data = self._insert(msg.data)
            out.append(msg if data is msg.data else LineData(data))
        else:
            out.append(msg)

    def _strip(self, data: bytes) -> bytes:
        """Drop sync bytes at tag positions; return `data` itself if none."""
        # Positions p with (p - base) even are tag positions.
        base = 0 if self._in_tag_next else 1
        i = data.find(self._sync_byte)
        if i < 0:
            self._in_tag_next = (len(data) - base) % 2 == 0
            return data
        parts = []
        start = 0
        while i >= 0:
            if (i - base) % 2 == 0:
                parts.append(data[start:i])
                start = base = i + 1
            i = data.find(self._sync_byte, i + 1)
        self._in_tag_next = (len(data) - base) % 2 == 0
        if start == 0:
            return data
        parts.append(data[start:])
        return b"".join(parts)

    def _insert(self, data: bytes) -> bytes:
        """Put sync bytes before the tags that are due one; return `data` itself if none."""
        first = 0 if self._out_tag_next else 1
        ntags = (len(data) - first + 1) // 2 if len(data) > first else 0
        if data:
            self._out_tag_next = (len(data) - first) % 2 == 0
        if ntags == 0:
            return data
        count = self._out_count
        if self.period:
            due = range((-count) % self.period, ntags, self.period)
            self._out_count = (count + ntags) % self.period
        else:
            due = range(0, 1 if count == 0 else 0)
            self._out_count = 1
        if not due:
            return data
        parts = []
        prev = 0
        for j in due:
            pos = first + 2 * j
            parts.append(data[prev:pos])
            prev = pos
        parts.append(data[prev:])
        return self._sync_byte.join(parts)
