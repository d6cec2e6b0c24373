"""hub: the core of the serial port hub (messages, ports, routes, filters, command line).

Public for plugins: `hub.messages`, `hub.caps`, `hub.filter.Filter`,
`hub.port.Port`/`Driver`, `hub.errors`, and `hub.testing` for their tests.
"""

__version__ = "0.1.0"
