"""Usage: echo

The echo filter (IN): every chunk of data read from the port is also written
back to the same port, through the OUT methods of the filters attached before
it. The original data goes on to the hub as usual. Unlike --echo-route, the
echo skips the filters after this one and the routing.

No options.
"""

from __future__ import annotations

from hub.filter import Filter
from hub.messages import LineData, Message

__all__ = ["EchoFilter"]


class EchoFilter(Filter):
    NAME = "echo"
    DESCRIPTION = "Echo filter (alternative to --echo-route option)"
    USAGE = __doc__ or ""

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        if type(msg) is LineData and msg.data:
            echo.append(msg)
        out.append(msg)
