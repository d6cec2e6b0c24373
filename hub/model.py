"""The hub model: ports, filter chains and routes, whatever front end described them.

The command line (with its --load files) and the config file each compile to a
`HubModel`; `hub.builder.build_hub` is the one place that turns a model into a
running `Hub`. Values stay in the command line's spelling (``--baud=9600``), so
the drivers' and filters' own usage texts keep parsing them, a model can be
printed as a command line or a config file, and two front ends can be compared.

Each port keeps only the sticky options whose value differs from its driver's
default, in name order: ``--baud=9600 --baud=19200 COM1`` and ``COM1`` give
the same port.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .args import Arg
from .routes import Routes

__all__ = ["Attachment", "FilterSpec", "HubModel", "PortSpec", "option_text"]

#: One option as given: ("--baud", "9600"), or ("--read-only", None) for a flag.
Option = tuple[str, str | None]


def option_text(opt: Option) -> str:
    """The command-line spelling of `opt`."""
    name, value = opt
    return name if value is None else f"{name}={value}"


@dataclass(frozen=True)
class PortSpec:
    """One port: which driver makes it, its path, and its sticky options."""

    driver: str
    path: str
    options: tuple[Option, ...] = ()
    #: Where the port was given (for error messages); not part of the value.
    arg: Arg = field(default=Arg(""), compare=False)


@dataclass(frozen=True)
class FilterSpec:
    """One --create-filter: module, group, instance name, arguments and the
    module's sticky hub options (trace's --trace-file) at that point."""

    module: str
    #: Only --add-filters looks at groups; a built chain does not depend on them.
    group: str = field(compare=False)
    name: str = ""
    args: tuple[str, ...] = ()
    sticky: tuple[Option, ...] = ()
    arg: Arg = field(default=Arg(""), compare=False)


@dataclass(frozen=True)
class Attachment:
    """Filter `filter` (an index into HubModel.filters) on port `port`."""

    port: int
    filter: int
    use_in: bool
    use_out: bool
    #: OUT runs only for data from these ports (None: from every port).
    sources: frozenset[int] | None = None


@dataclass
class HubModel:
    """Everything one Hub is made of, in a form every front end can produce."""

    ports: list[PortSpec] = field(default_factory=list)
    filters: list[FilterSpec] = field(default_factory=list)
    #: In the order the filters sit on each port (first: nearest the driver).
    attachments: list[Attachment] = field(default_factory=list)
    routes: Routes = field(default_factory=lambda: Routes({}, {}))
    #: Options a driver keeps for all its ports (the connector's links), by driver.
    driver_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: --required: the ports /healthz checks (None: every port).
    required: tuple[int, ...] | None = None
    #: The HTTP server's options as given (--http=8080, --http-allow=...), last one of each name.
    http: tuple[str, ...] = ()
    verbosity: int = 0
    report_interval_s: float = 10.0
    status_interval_s: float = 0.0

    def chain(self, port: int) -> list[Attachment]:
        """The filters on `port`, nearest the driver first."""
        return [a for a in self.attachments if a.port == port]

    def same_as(self, other: HubModel) -> bool:
        """Equal ports, filters, chains, routes and health (where they came from aside)."""
        return (
            self.ports == other.ports
            and self.filters == other.filters
            and self.attachments == other.attachments
            and self.routes == other.routes
            and self.driver_args == other.driver_args
            and self.required == other.required
        )
