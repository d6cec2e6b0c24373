"""The small base every filter builds on, and the context the hub hands it.

A filter is sans-IO: messages in, messages out, timers requested through its
context. Outputs are appended to caller-owned lists; passing a message on
unchanged means appending the same object.

On a port that serves many sessions (tcp-multi) every session has its own
instance of each filter (hub.chain), made with the same configuration; the
context's `port_name` then names the session ("TCPM(1)#3").

Port layout (spec 1.7)::

    port driver <-> L[0] <-> L[1] <-> ... <-> L[n-1] <-> hub routing

IN runs L[0] first; OUT runs L[n-1] first. Echo from L[k].on_in runs through
the OUT methods of L[k-1] .. L[0] and is written back to the port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from .caps import In, Out
from .messages import Message

__all__ = ["Filter", "FilterContext", "Timer"]


class Timer(Protocol):
    """What `FilterContext.call_later` returns (an asyncio.TimerHandle)."""

    def cancel(self) -> None: ...


class FilterContext(Protocol):
    """Services the hub gives one filter instance on one port."""

    #: Index of the port the instance is attached to.
    port: int

    @property
    def port_name(self) -> str:
        """Display name of that port, e.g. "TCP(1)"."""
        ...

    #: The filter's name (FN in --create-filter), e.g. "telnet".
    name: str

    @property
    def log(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """The filter's logger; the hub's records name the port (hub.logs.PortLogger)."""
        ...

    @property
    def observer(self) -> bool:
        """True while the connection this instance serves is an observer (a
        --read-only port, or a session another session holds control of): its
        peer's requests are answered with the port's current values, not applied.
        May change over time (--recv-from=last-active)."""
        ...

    def port_name_of(self, index: int) -> str:
        """Display name of any port (for messages about sources)."""
        ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` after `delay_s` seconds on the hub's loop."""
        ...

    def time(self) -> float:
        """The hub's monotonic clock in seconds (the loop's time)."""
        ...

    def send_in(self, msgs: list[Message]) -> None:
        """Inject `msgs` into the port's IN chain just after this filter; they are then routed."""
        ...

    def send_out(self, msgs: list[Message], src: int | None = None) -> None:
        """Inject `msgs` into the port's OUT chain just below this filter, towards the wire.

        `src` is the port the messages came from originally (default: this port);
        it decides whether the port may drop them when its queue is full.
        """
        ...


class Filter:
    """Base class of filters. Override only what the filter uses.

    Class attributes a plugin sets:

    * ``NAME``: the module name used in --create-filter (``telnet``);
    * ``DESCRIPTION``: one line for ``--help``;
    * ``USAGE``: the docopt usage text; it parses the filter's arguments and is
      what ``--help=<name>`` prints (usually the module docstring);
    * ``GLOBAL_USAGE``: optional docopt text for sticky options this module
      recognises on the hub command line (trace's ``--trace-file``).

    Instance attributes (set in ``__init__``, read by the hub's negotiation):
    ``provides``, ``needs``, ``sends``, ``accepts`` (see hub.caps). After
    negotiation the hub sets ``wanted`` (the part of ``provides`` somebody
    consumes) and ``offered`` (the part of ``accepts`` somebody sends).
    """

    NAME: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    USAGE: ClassVar[str] = ""
    GLOBAL_USAGE: ClassVar[str] = ""

    provides: In = In.NONE
    needs: In = In.NONE
    sends: Out = Out.NONE
    accepts: Out = Out.NONE
    wanted: In = In.NONE
    offered: Out = Out.NONE

    def __init__(self, ctx: FilterContext, config: Any) -> None:
        self.ctx = ctx
        self.config = config

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> Any:
        """Turn parsed options into this filter's configuration, once per --create-filter.

        `options` holds the options given (name -> value); `sticky` the module's
        current hub-command-line options (GLOBAL_USAGE). Raise UsageError(arg, text)
        for a bad value. The default returns `options` unchanged.
        """
        return options

    def start(self, out: list[Message]) -> None:
        """Append messages to send towards the port once negotiation is done
        (pinmap's initial pin state). Runs before the drivers start."""

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        """A message read from the port. Append what goes on to `out`, replies to `echo`."""
        out.append(msg)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        """A message from port `src` about to be written to this filter's port."""
        out.append(msg)

    def close(self) -> None:
        """Cancel timers and release state. Called once at shutdown."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.name} on {self.ctx.port_name}>"

    @classmethod
    def has_in(cls) -> bool:
        return cls.on_in is not Filter.on_in

    @classmethod
    def has_out(cls) -> bool:
        return cls.on_out is not Filter.on_out
